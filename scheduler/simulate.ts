/**
 * Runs the scenarios of scenarios.ts on a virtual clock with the simulated engine: the scheduler is
 * calibrated (a cost model fitted from a benchmark sweep of each simulated device), streams arrive,
 * and every tick's plan is "run" by the engine; its results go back through `update`. Everything is
 * seeded, so two runs give identical results.
 */
import { schedulerConfig, type SchedulerConfig } from './config.js';
import { quantile } from './stats.js';
import { VirtualClock } from './clock.js';
import { CostModel, type ForwardSample, type FrameCodecSample } from './cost-model.js';
import { simulatePipeline, stageWorkFrom } from './pipeline.js';
import { Scheduler } from './scheduler.js';
import { MODEL_NAME, SCENARIOS, WAN_1_3B, gpu, wanStream, type PipelineScenario, type Scenario, type SchedulerScenario } from './scenarios.js';
import { SimulatedEngine } from './simulated-engine.js';
import type { JobResult, Plan, RefusalCode, RungChange, StoppedStream, StreamMetrics, StreamSpec } from './types.js';

export interface Refusal {
  streamId: string;
  atMs: number;
  code: RefusalCode;
  reason: string;
}

export interface ScenarioResult {
  name: string;
  kind: 'scheduler' | 'pipeline';
  description: string;
  devices: number;
  admitted: number;
  refused: number;
  /** Streams the scheduler stopped to keep the others' deadlines. */
  stopped: number;
  missedDeadlines: number;
  framesDelivered: number;
  missRate: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  p99JitterMs: number;
  /** Largest time to first frame of an admitted stream (null: none delivered). */
  maxTtffMs: number | null;
  /** Every admitted stream's first frame came within its TTFF objective. */
  ttffMet: boolean;
  /** Blocks finished at each step count, over all streams. */
  blocksBySteps: Record<string, number>;
  /** Ladder moves: down (degraded) and up (restored). */
  stepsLowered: number;
  stepsRaised: number;
  refusals: Refusal[];
  stops: StoppedStream[];
  /** Frames per second delivered (all streams together). */
  fps: number;
  /** Forwards run and their mean batch (work items per forward). */
  forwards: number;
  meanBatch: number;
  /** Pipeline scenarios: fps relative to the same pipeline on one GPU. */
  speedup?: number;
  rebalances?: number;
  /** Pipeline scenarios: busy share of each stage. */
  stageUtilisation?: number[];
  split?: Array<[number, number]>;
  streams?: StreamMetrics[];
}

export interface SimulationReport {
  scenarios: ScenarioResult[];
}

export interface SimulateOptions {
  /** Run only these scenarios (by name). */
  names?: readonly string[];
  /** Scheduler configuration (defaults: the `scheduler:` section's). */
  config?: SchedulerConfig;
  /** Include per-stream metrics. */
  perStream?: boolean;
  seed?: number;
}

export function scenarioNames(): string[] {
  return SCENARIOS.map((s) => s.name);
}

export function runScenarios(options: SimulateOptions = {}): SimulationReport {
  const chosen = options.names?.length ? SCENARIOS.filter((s) => options.names!.includes(s.name)) : SCENARIOS;
  const config = options.config ?? schedulerConfig();
  return { scenarios: chosen.map((s) => runScenario(s, config, options)) };
}

export function runScenario(scenario: Scenario, config: SchedulerConfig, options: Pick<SimulateOptions, 'perStream' | 'seed'> = {}): ScenarioResult {
  return scenario.kind === 'scheduler' ? runSchedulerScenario(scenario, config, options) : runPipelineScenario(scenario, config, options);
}

/** Fits a cost model from a benchmark sweep of each simulated device. */
export function calibrate(engine: SimulatedEngine, deviceIds: readonly string[], stream: StreamSpec, blockFrames: readonly number[]): CostModel {
  const samples = { forward: [] as ForwardSample[], decode: [] as FrameCodecSample[] };
  for (const id of deviceIds) {
    const s = engine.calibrate(id, MODEL_NAME, { tokensPerFrame: stream.tokensPerFrame, windowFrames: stream.windowFrames, blockFrames });
    samples.forward.push(...s.forward);
    samples.decode.push(...s.decode);
  }
  return CostModel.fit(samples).model;
}

function runSchedulerScenario(sc: SchedulerScenario, config: SchedulerConfig, options: Pick<SimulateOptions, 'perStream' | 'seed'>): ScenarioResult {
  const engine = new SimulatedEngine(sc.devices, { [MODEL_NAME]: WAN_1_3B }, options.seed ?? 1);
  const clock = new VirtualClock(0);
  const scheduler = new Scheduler({
    clock,
    costModel: calibrate(engine, sc.devices.map((d) => d.id), sc.arrivals[0]?.spec ?? wanStream('calibration'), config.blockFrames),
    devices: sc.devices.map((d) => ({ id: d.id, maxBatch: d.maxBatch })),
    config,
  });
  const arrivals = [...sc.arrivals].sort((a, b) => a.atMs - b.atMs);
  const inflight: Array<{ plan: Plan; result: JobResult }> = [];
  const refusals: Refusal[] = [];
  const stops: StoppedStream[] = [];
  const changes: RungChange[] = [];
  const admitted: string[] = [];
  let next = 0;
  let t = 0;
  let forwards = 0;
  let items = 0;
  for (let guard = 0; guard < 10_000_000; guard++) {
    clock.set(t);
    inflight.sort((a, b) => a.result.finishedAt - b.result.finishedAt || a.result.jobId - b.result.jobId);
    while (inflight.length > 0 && inflight[0].result.finishedAt <= t) {
      const done = inflight.shift()!;
      scheduler.update(done.plan, [done.result]);
    }
    while (next < arrivals.length && arrivals[next].atMs <= t) {
      const decision = scheduler.admit(arrivals[next].spec, t);
      if (decision.admitted) admitted.push(decision.streamId);
      else refusals.push({ streamId: decision.streamId, atMs: t, code: decision.code, reason: decision.reason });
      next++;
    }
    const plan = scheduler.tick(t);
    changes.push(...plan.changes);
    stops.push(...plan.stopped);
    for (const job of plan.jobs) {
      inflight.push({ plan, result: engine.run(job, t) });
      forwards++;
      items += job.items.length;
    }
    const candidates = [
      ...inflight.map((f) => f.result.finishedAt),
      ...(next < arrivals.length ? [arrivals[next].atMs] : []),
    ];
    const wake = scheduler.nextWakeup(t);
    if (wake !== null && wake > t) candidates.push(wake);
    const upcoming = candidates.length ? Math.min(...candidates) : Infinity;
    if (upcoming > sc.durationMs) break;
    t = upcoming;
  }
  // Stops and changes decided by the last updates surface in one more plan.
  const last = scheduler.tick(clock.now());
  changes.push(...last.changes);
  stops.push(...last.stopped);
  clock.set(sc.durationMs);
  const metrics = admitted.map((id) => scheduler.metrics(id, sc.durationMs));
  const latencies = admitted.flatMap((id) => scheduler.latencies(id, sc.durationMs));
  const jitters = metrics.map((m) => m.jitterMs.p99);
  const blocksBySteps: Record<string, number> = {};
  for (const m of metrics) for (const [k, v] of Object.entries(m.blocksBySteps)) blocksBySteps[k] = (blocksBySteps[k] ?? 0) + v;
  const lowered = changes.filter((c) => c.to.steps < c.from.steps || (c.to.steps === c.from.steps && c.to.blockFrames !== c.from.blockFrames)).length;
  const specs = new Map(sc.arrivals.map((a) => [a.spec.id, a.spec]));
  const ttffs = metrics.map((m) => m.ttffMs).filter((x): x is number => x !== null);
  const framesDelivered = metrics.reduce((n, m) => n + m.framesDelivered, 0);
  const missedDeadlines = metrics.reduce((n, m) => n + m.missedDeadlines, 0);
  return {
    name: sc.name,
    kind: 'scheduler',
    description: sc.description,
    devices: sc.devices.length,
    admitted: admitted.length,
    refused: refusals.length,
    stopped: stops.length,
    missedDeadlines,
    framesDelivered,
    missRate: framesDelivered + missedDeadlines === 0 ? 0 : missedDeadlines / Math.max(framesDelivered, missedDeadlines),
    p50LatencyMs: round(latencies.length ? quantile(latencies, 0.5) : 0),
    p99LatencyMs: round(latencies.length ? quantile(latencies, 0.99) : 0),
    p99JitterMs: round(jitters.length ? Math.max(...jitters) : 0),
    maxTtffMs: ttffs.length ? round(Math.max(...ttffs)) : null,
    ttffMet: metrics.every((m) => m.ttffMs !== null && m.ttffMs <= specs.get(m.streamId)!.objectives.ttffMs),
    blocksBySteps,
    stepsLowered: lowered,
    stepsRaised: changes.length - lowered,
    refusals,
    stops,
    fps: round((framesDelivered * 1000) / sc.durationMs),
    forwards,
    meanBatch: round(forwards === 0 ? 0 : items / forwards, 2),
    ...(options.perStream ? { streams: metrics } : {}),
  };
}

/** Frames per second of each pipeline size, computed once per configuration (the speed-up's base). */
function runPipelineScenario(sc: PipelineScenario, _config: SchedulerConfig, options: Pick<SimulateOptions, 'seed'>): ScenarioResult {
  const run = (s: PipelineScenario) => pipelineRun(s, _config, options.seed ?? 1);
  const result = run(sc);
  const base = sc.devices === 1 && !sc.slowdown ? result : run({ ...sc, devices: 1, slowdown: undefined, name: 'base' });
  return {
    name: sc.name,
    kind: 'pipeline',
    description: sc.description,
    devices: sc.devices,
    admitted: 1,
    refused: 0,
    stopped: 0,
    missedDeadlines: result.missedDeadlines,
    framesDelivered: result.framesDelivered,
    missRate: result.blocks === 0 ? 0 : result.missedDeadlines / result.blocks,
    p50LatencyMs: round(result.blockLatencyMs.p50),
    p99LatencyMs: round(result.blockLatencyMs.p99),
    p99JitterMs: 0,
    maxTtffMs: null,
    ttffMet: true,
    blocksBySteps: { [String(sc.steps)]: result.blocks },
    stepsLowered: 0,
    stepsRaised: 0,
    refusals: [],
    stops: [],
    fps: round(result.fps),
    forwards: result.passes,
    meanBatch: 1,
    stageUtilisation: result.stageUtilisation.map((u) => round(u, 2)),
    speedup: round(result.fps / base.fps, 2),
    rebalances: result.rebalances,
    split: result.finalSplit,
  };
}

function pipelineRun(sc: PipelineScenario, config: SchedulerConfig, seed: number) {
  const device = gpu('gpu0');
  const engine = new SimulatedEngine([device], { [MODEL_NAME]: WAN_1_3B }, seed);
  const spec = wanStream('pipeline');
  const cost = calibrate(engine, [device.id], spec, [3]);
  const blockFrames = 3;
  const item = { queryTokens: blockFrames * spec.tokensPerFrame, cachedTokens: (spec.windowFrames - blockFrames) * spec.tokensPerFrame };
  // Activations of one block, bf16: tokens x dim x 2 bytes over a 25 GB/s link (PCIe-class; NVLink is faster).
  const transferMs = sc.devices > 1 ? (item.queryTokens * WAN_1_3B.dim * 2) / 25e6 : 0;
  const work = stageWorkFrom(cost, device.id, [item], WAN_1_3B.layers, { steps: sc.steps, latentFramesPerBlock: blockFrames, transferMs });
  const slow = sc.slowdown;
  return simulatePipeline({
    work,
    devices: sc.devices,
    passesPerBlock: sc.steps + 1,
    videoFramesPerBlock: blockFrames * spec.videoFramesPerLatentFrame,
    inFlight: sc.devices * sc.inFlightPerDevice,
    durationMs: sc.durationMs,
    trueSpeed: slow ? (d, at) => (d === slow.device && at >= slow.atMs ? slow.factor : 1) : undefined,
    noise: device.noise,
    seed,
    balancer: { threshold: config.rebalanceThreshold, smoothing: config.speedSmoothing },
    latencyObjectiveMs: spec.objectives.latencyMs,
  });
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
