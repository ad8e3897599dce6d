/**
 * engine.placement on virtual time: under `replicas` each stream's engine goes whole on the GPU of the
 * lane the scheduler places it on (two streams on two GPUs: different GPUs, both at full steps), under
 * `pipeline` every stream's engine spans the GPUs and streams share the stage lanes as before, and `auto`
 * picks from both setups' calibrated costs. The calibrations are injected (no GPU here); the generators run
 * on the virtual clock.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../scheduler/clock.js';
import { CostModel } from '../../scheduler/cost-model.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { SinkstreamError } from '../../src/errors.js';
import { runScheduledBlock } from '../../src/realtime/scheduled-block.js';
import { placementGpus, replicaConfig } from '../../src/realtime/placement.js';
import { ServeScheduling, type CalibrationLike } from '../../src/serve/serve-scheduling.js';
import { silentLogger } from '../../src/serve/logger.js';
import type { ServerMetrics } from '../../src/serve/metrics.js';
import type { LiveGenerator } from '../../src/serve/live-stream.js';
import { ManualTimers, VirtualGenerator, costModel, runUntil, schedulerConfig, spec, streamLoop } from './helpers/virtual-time.js';
import { RuntimeScheduler } from '../../src/realtime/runtime-scheduler.js';

const metrics = { attachScheduler: () => undefined, schedulerDecision: () => undefined } as unknown as ServerMetrics;

function config(placement: 'pipeline' | 'replicas' | 'auto', o: { maxStreams?: number; scheduler?: Record<string, unknown> } = {}): Config {
  return loadConfig({
    overrides: {
      engine: { name: 'native', dtype: 'float16', stages: 2, devices: [0, 1], placement },
      serve: { maxStreams: o.maxStreams ?? 2 },
      scheduler: { marginMs: 20, ...(o.scheduler ?? {}) },
      generation: { steps: [1000, 750, 500, 250] }, // the costs below are worked out for 4 steps a block
    },
  });
}

/** Every forward `forwardMs`, nothing else: a block at s steps is (s + 1) x forwardMs. */
function flat(device: string, forwardMs: number): CalibrationLike {
  const c = { overheadMs: forwardMs, perItemMs: 0, perTokenMs: 0, perTokenKeyMs: 0, decodeOverheadMs: 0, decodePerLatentFrameMs: 0, encodeOverheadMs: 0, encodePerLatentFrameMs: 0 };
  return { device, costModel: new CostModel({ [device]: c }) };
}

/** A calibration per setup (one stage: a replica; more: the pipeline), recording the configs it measured. */
function calibrations(replicaForwardMs: number | Error, pipelineForwardMs: number) {
  const asked: Config[] = [];
  const calibrate = async (c: Config): Promise<CalibrationLike> => {
    asked.push(c);
    if (c.engine.stages > 1) return flat('native-cuda', pipelineForwardMs);
    if (replicaForwardMs instanceof Error) throw replicaForwardMs;
    return flat('native-cuda', replicaForwardMs);
  };
  return { asked, calibrate };
}

function scheduling(cfg: Config, calibrate: (c: Config) => Promise<CalibrationLike>) {
  const clock = new VirtualClock(0);
  const timers = new ManualTimers(clock);
  return { clock, timers, s: new ServeScheduling(cfg, metrics, silentLogger(), { calibrate, clock, timers }) };
}

const generator = { framesPerBlock: 3 } as LiveGenerator;

/** Not lowered: the first block at the opening's steps (generation.openingSteps, else steps), every later one at `steps`. */
function atFullSteps(steps: number[], cfg: Config): boolean {
  const full = cfg.generation.steps.length;
  return steps.every((n, i) => n === (i === 0 ? (cfg.generation.openingSteps?.length ?? full) : full));
}

/** Places and admits streams a and b, runs them for 3 s of virtual time; their configs, lanes and steps. */
async function twoStreams(cfg: Config, forwardMs: number, calibrate: (c: Config) => Promise<CalibrationLike>) {
  const { clock, timers, s } = scheduling(cfg, calibrate);
  const runtime = await s.prepare();
  const out: Array<{ config: Config; lane: string; steps: number[] }> = [];
  const loops = [];
  for (const id of ['a', 'b']) {
    const placed = s.place(runtime, id, cfg);
    const stream = s.admitter(runtime, id)(generator, placed);
    const gen = new VirtualGenerator(clock, 3, forwardMs);
    loops.push(streamLoop(stream, gen, (st, g) => runScheduledBlock(st, g)));
    out.push({ config: placed, lane: stream.metrics().device ?? '', steps: gen.steps });
  }
  await runUntil(clock, timers, 3000);
  runtime.close();
  await Promise.all(loops.map((l) => l.done));
  return { out, s };
}

test('config: replicas and auto need the native engine and several GPUs', () => {
  assert.is(config('replicas').engine.placement, 'replicas');
  assert.is(loadConfig({}).engine.placement, 'pipeline');
  assert.throws(() => loadConfig({ overrides: { engine: { placement: 'replicas' } } }), /engine\.placement.*needs engine\.name 'native'/);
  assert.throws(() => loadConfig({ overrides: { engine: { name: 'native', placement: 'auto' } } }), /engine\.placement.*several GPUs/);
  assert.throws(() => loadConfig({ overrides: { engine: { name: 'native', placement: 'sideways' } } }), /engine\.placement/);
});

test("a replica's config: the whole model on one GPU (one stage, engine.device), the rest unchanged", () => {
  const cfg = config('replicas');
  assert.equal(placementGpus(cfg), [0, 1]);
  assert.equal(placementGpus(loadConfig({ overrides: { engine: { name: 'native', stages: 3, device: 2 } } })), [2, 3, 4]);
  const r = replicaConfig(cfg, 1);
  assert.equal([r.engine.stages, r.engine.device, r.engine.devices, r.engine.stageLayers], [1, 1, undefined, undefined]);
  assert.equal({ ...r, engine: undefined }, { ...cfg, engine: undefined });
});

test('replicas: two streams on two GPUs get different GPUs (the least loaded lane) and run at full steps', async () => {
  // 30 ms a forward: a 4-step block is 150 ms of the 187.5 ms a 3-frame block lasts at 16 fps (80% of a GPU),
  // so two streams on one GPU could not both keep 4 steps.
  const { asked, calibrate } = calibrations(30, 32);
  const cfg = config('replicas');
  const { out, s } = await twoStreams(cfg, 30, calibrate);
  assert.is(s.placement, 'replicas');
  // the calibration measured one whole-model engine, on the first GPU
  assert.equal(asked.map((c) => [c.engine.stages, c.engine.device]), [[1, 0]]);
  assert.equal(out.map((o) => o.config.engine.device).sort(), [0, 1]);
  for (const o of out) {
    assert.is(o.config.engine.stages, 1);
    assert.is(o.config.engine.devices, undefined);
    assert.is(o.lane, `native-cuda/${o.config.engine.device}`, 'the engine is on the GPU of the lane the stream was admitted to');
    assert.ok(o.steps.length >= 10, `blocks run: ${o.steps.length}`);
    assert.ok(atFullSteps(o.steps, cfg), `steps ${o.steps}`);
  }
});

test('pipeline: every stream keeps the engine spanning both GPUs and takes a stage lane, as before', async () => {
  const { asked, calibrate } = calibrations(30, 30);
  const cfg = config('pipeline');
  const { out, s } = await twoStreams(cfg, 30, calibrate);
  assert.is(s.placement, 'pipeline');
  assert.equal(asked.map((c) => c.engine.stages), [2]);
  for (const o of out) assert.is(o.config, cfg, 'the config as given: the pipeline engine over GPUs 0 and 1');
  assert.equal(out.map((o) => o.lane).sort(), ['native-cuda/0', 'native-cuda/1']);
  for (const o of out) assert.ok(atFullSteps(o.steps, cfg), `steps ${o.steps}`);
});

test('replicas: a stream no GPU can keep is refused before its engine is built, with the reason', async () => {
  const { calibrate } = calibrations(100, 100);
  const cfg = config('replicas');
  const { s } = scheduling(cfg, calibrate);
  const runtime = await s.prepare();
  assert.throws(
    () => s.place(runtime, 'x', cfg),
    (e: unknown) => e instanceof SinkstreamError && e.code === 'ERR_CAPACITY' && /no device can take stream 'x'/.test(e.message),
  );
  runtime.close();
});

test('auto: two streams on two GPUs whose whole-model block is the cheaper: replicas, streams on different GPUs', async () => {
  const { asked, calibrate } = calibrations(30, 32);
  const cfg = config('auto');
  const { out, s } = await twoStreams(cfg, 30, calibrate);
  assert.is(s.placement, 'replicas');
  assert.match(s.placementChoice!.reason, /2 streams on 2 GPUs/);
  assert.equal(asked.map((c) => c.engine.stages), [2, 1], 'both setups calibrated');
  assert.equal(out.map((o) => o.config.engine.device).sort(), [0, 1]);
  for (const o of out) assert.ok(atFullSteps(o.steps, cfg), `steps ${o.steps}`);
});

test('auto: one stream whose latency objective only the pipeline meets: the pipeline', async () => {
  // 2 fps: a 3-frame block every 1.5 s; TTFF and latency 1000 ms: a whole block (not preemptible) waits
  // for at most one other, so it needs 2 x block <= 900 ms. Replica 5 x 120 = 600 ms fails, pipeline 400 passes.
  const { calibrate } = calibrations(120, 80);
  const cfg = config('auto', { maxStreams: 1, scheduler: { targetFps: 2, ttffMs: 1000, latencyMs: 1000 } });
  const { s } = scheduling(cfg, calibrate);
  const runtime = await s.prepare();
  assert.is(s.placement, 'pipeline');
  assert.match(s.placementChoice!.reason, /only pipeline meets the objectives/);
  assert.is(s.place(runtime, 'a', cfg), cfg);
  runtime.close();
});

test('auto: a whole-model engine that cannot be built leaves the pipeline', async () => {
  const { calibrate } = calibrations(new Error('out of memory on cuda:0'), 30);
  const cfg = config('auto');
  const { s } = scheduling(cfg, calibrate);
  const runtime = await s.prepare();
  assert.is(s.placement, 'pipeline');
  assert.match(s.placementChoice!.reason, /only pipeline was measured/);
  runtime.close();
});

test('the runtime scheduler: place says the lane admit would take; admit can be held to a lane', () => {
  const clock = new VirtualClock(0);
  const runtime = new RuntimeScheduler({ costModel: costModel(), device: 'dev', lanes: 2, config: schedulerConfig(), clock, timers: new ManualTimers(clock) });
  const first = runtime.place(spec('a'));
  assert.equal(first, { lane: 'dev/0' });
  const a = runtime.admit(spec('a'), 'dev/1');
  assert.ok(a.admitted && a.decision.device === 'dev/1', 'held to the lane asked for');
  // dev/1 now carries a: the least loaded lane is dev/0
  assert.equal(runtime.place(spec('b')), { lane: 'dev/0' });
  const nowhere = runtime.admit(spec('c'), 'dev/7');
  assert.ok(!nowhere.admitted && nowhere.decision.code === 'no-device', 'a lane the scheduler does not have');
  runtime.close();
});

test.run();
