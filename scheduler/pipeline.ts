/**
 * A pipeline across GPUs: the transformer's layers split into contiguous ranges, one per device
 * (StreamDiffusionV2's block scheduler, with a cost model behind it).
 *
 * A pass of one micro-batch through stage j costs
 *   speed_j * (stageOverhead + sum of its layers' times + extras_j)
 * where the first stage also embeds (and, video-to-video, encodes) and the last runs the head and
 * the decode; activations then travel to the next stage (`transferMs`). The split minimises the
 * slowest stage (an exact min-max partition by dynamic programming, so it holds for any number of
 * devices and uneven layers). Measured stage times update each device's speed estimate; when a new
 * split would shorten the slowest stage by more than the threshold, the pipeline rebalances.
 * With at least as many micro-batches in flight as stages (the stream batch: blocks at different
 * denoising steps), every stage stays busy.
 */
import type { CostModel, ForwardItemShape } from './cost-model.js';
import { seededRandom } from './random.js';
import { percentiles } from './playout.js';
import type { Percentiles } from './types.js';

/** What one pass of one micro-batch costs, before a device's speed is applied. */
export interface StageWork {
  layerMs: readonly number[];
  /** Paid by every stage (its own launches and synchronisation). */
  stageOverheadMs: number;
  /** Embedding (+ encode) on the first stage, per pass. */
  firstExtraMs: number;
  /** Head + decode on the last stage, per pass (decode averaged over a block's passes). */
  lastExtraMs: number;
  /** Sending activations to the next stage. */
  transferMs: number;
}

/** Layer ranges [start, end), one per stage, in order. */
export type Split = Array<[number, number]>;

/** A stage's compute time (no transfer) at the given device speed. */
export function stageComputeMs(work: StageWork, split: Split, stage: number, speed = 1): number {
  const [start, end] = split[stage];
  let ms = work.stageOverheadMs;
  for (let l = start; l < end; l++) ms += work.layerMs[l];
  if (stage === 0) ms += work.firstExtraMs;
  if (stage === split.length - 1) ms += work.lastExtraMs;
  return ms * speed;
}

export function stageTimes(work: StageWork, split: Split, speeds: readonly number[] = []): number[] {
  return split.map((_, j) => stageComputeMs(work, split, j, speeds[j] ?? 1));
}

/** The slowest stage (the pipeline's time per pass in the steady state). */
export function bottleneckMs(work: StageWork, split: Split, speeds: readonly number[] = []): number {
  return Math.max(...stageTimes(work, split, speeds));
}

/** max / mean of the stage times: 1 = perfectly balanced. */
export function imbalance(times: readonly number[]): number {
  const mean = times.reduce((s, t) => s + t, 0) / times.length;
  return mean === 0 ? 1 : Math.max(...times) / mean;
}

/** The contiguous split into `devices` stages that minimises the slowest stage. */
export function balance(work: StageWork, devices: number, speeds: readonly number[] = []): Split {
  const layers = work.layerMs.length;
  if (!(Number.isInteger(devices) && devices >= 1)) throw new RangeError(`pipeline: ${devices} devices; expected a positive integer`);
  if (devices > layers) throw new RangeError(`pipeline: ${devices} devices for ${layers} layers; expected at most one device per layer`);
  const prefix = [0];
  for (const ms of work.layerMs) prefix.push(prefix[prefix.length - 1] + ms);
  const cost = (stage: number, start: number, end: number): number => {
    let ms = work.stageOverheadMs + prefix[end] - prefix[start];
    if (stage === 0) ms += work.firstExtraMs;
    if (stage === devices - 1) ms += work.lastExtraMs;
    return ms * (speeds[stage] ?? 1);
  };
  // best[j][i]: the least possible slowest stage when stages 0..j-1 hold layers [0, i).
  const best: number[][] = Array.from({ length: devices + 1 }, () => new Array<number>(layers + 1).fill(Infinity));
  const cut: number[][] = Array.from({ length: devices + 1 }, () => new Array<number>(layers + 1).fill(-1));
  best[0][0] = 0;
  for (let j = 1; j <= devices; j++) {
    for (let i = j; i <= layers - (devices - j); i++) {
      for (let k = j - 1; k < i; k++) {
        const v = Math.max(best[j - 1][k], cost(j - 1, k, i));
        if (v < best[j][i] - 1e-12) {
          best[j][i] = v;
          cut[j][i] = k;
        }
      }
    }
  }
  const split: Split = [];
  let end = layers;
  for (let j = devices; j >= 1; j--) {
    const start = cut[j][end];
    split.unshift([start, end]);
    end = start;
  }
  return split;
}

export interface BalancerOptions {
  /** Rebalance when the slowest stage would shrink by more than this share. */
  threshold: number;
  /** Weight of a new measurement in a device's speed estimate. */
  smoothing: number;
}

/** Keeps a split balanced from measured stage times. */
export class PipelineBalancer {
  private current: Split;
  private readonly speeds: number[];
  rebalances = 0;

  constructor(
    private readonly work: StageWork,
    readonly devices: number,
    private readonly options: BalancerOptions,
  ) {
    this.speeds = new Array<number>(devices).fill(1);
    this.current = balance(work, devices);
  }

  get split(): Split {
    return this.current.map(([a, b]) => [a, b]);
  }

  get speedEstimates(): number[] {
    return [...this.speeds];
  }

  /** Predicted stage times of the current split at the estimated speeds. */
  predictedStageMs(): number[] {
    return stageTimes(this.work, this.current, this.speeds);
  }

  /** Records one pass's measured compute time per stage; returns true when the split changed. */
  record(measuredMs: readonly number[]): boolean {
    const a = this.options.smoothing;
    measuredMs.forEach((ms, j) => {
      const expected = stageComputeMs(this.work, this.current, j);
      if (expected > 0) this.speeds[j] = (1 - a) * this.speeds[j] + a * (ms / expected);
    });
    const now = bottleneckMs(this.work, this.current, this.speeds);
    const candidate = balance(this.work, this.devices, this.speeds);
    const then = bottleneckMs(this.work, candidate, this.speeds);
    if (now - then > this.options.threshold * now) {
      this.current = candidate;
      this.rebalances++;
      return true;
    }
    return false;
  }
}

/** Stage work of one micro-batch derived from a fitted cost model (the layers are alike). */
export function stageWorkFrom(
  cost: CostModel,
  device: string,
  items: readonly ForwardItemShape[],
  layers: number,
  options: { steps: number; latentFramesPerBlock: number; transferMs: number },
): StageWork {
  const c = cost.coefficients(device);
  const forward = cost.forwardMs(device, items);
  const perLayer = (forward - c.overheadMs) / layers;
  const perPass = 1 / (options.steps + 1);
  return {
    layerMs: new Array<number>(layers).fill(perLayer),
    stageOverheadMs: c.overheadMs,
    firstExtraMs: cost.encodeMs(device, options.latentFramesPerBlock * items.length) * perPass,
    lastExtraMs: cost.decodeMs(device, options.latentFramesPerBlock * items.length) * perPass,
    transferMs: options.transferMs,
  };
}

export interface PipelineRunOptions {
  work: StageWork;
  devices: number;
  /** Passes per block: denoising steps + the clean pass. */
  passesPerBlock: number;
  videoFramesPerBlock: number;
  /** Micro-batches in flight (default: one per stage, so every stage can be busy). */
  inFlight?: number;
  durationMs: number;
  /** True speed of each device over time (1 = as the work says); the balancer does not see it. */
  trueSpeed?: (device: number, at: number) => number;
  noise?: number;
  seed?: number;
  balancer?: BalancerOptions;
  /** A block whose generation takes longer than this counts as a missed deadline. */
  latencyObjectiveMs: number;
}

export interface PipelineRunResult {
  devices: number;
  blocks: number;
  /** Passes through the whole pipeline (forwards). */
  passes: number;
  framesDelivered: number;
  fps: number;
  blockLatencyMs: Percentiles;
  missedDeadlines: number;
  stageUtilisation: number[];
  rebalances: number;
  initialSplit: Split;
  finalSplit: Split;
  /** max / mean of the measured stage times over the last passes. */
  finalImbalance: number;
}

/**
 * Runs the pipeline on a virtual clock: micro-batches circulate stage 0 -> N-1 -> 0 (the ring);
 * each pass advances a micro-batch's block by one step; after `passesPerBlock` passes the block is
 * done and a new one takes its place. Stages are FIFO servers, one pass at a time.
 */
export function simulatePipeline(o: PipelineRunOptions): PipelineRunResult {
  const n = o.devices;
  const random = seededRandom(o.seed ?? 1);
  const noise = o.noise ?? 0;
  const trueSpeed = o.trueSpeed ?? (() => 1);
  const balancer = new PipelineBalancer(o.work, n, o.balancer ?? { threshold: 0.1, smoothing: 0.3 });
  const initialSplit = balancer.split;
  const inFlight = o.inFlight ?? n;
  const stageFree = new Array<number>(n).fill(0);
  const busy = new Array<number>(n).fill(0);
  // Each micro-batch: when it is ready at stage 0, its block's start and passes done.
  const batches = Array.from({ length: inFlight }, () => ({ ready: 0, blockStart: 0, passes: 0 }));
  const latencies: number[] = [];
  let missed = 0;
  let lastMeasured: number[] = [];
  let passes = 0;
  for (;;) {
    // The micro-batch that reaches stage 0 first goes next (ties: lowest index), so passes interleave.
    let m = 0;
    for (let i = 1; i < batches.length; i++) if (batches[i].ready < batches[m].ready) m = i;
    const mb = batches[m];
    if (mb.ready >= o.durationMs) break;
    const split = balancer.split;
    let t = mb.ready;
    const measured: number[] = [];
    for (let j = 0; j < n; j++) {
      const start = Math.max(t, stageFree[j]);
      const ms = stageComputeMs(o.work, split, j) * trueSpeed(j, start) * (1 + noise * (2 * random() - 1));
      measured.push(ms);
      stageFree[j] = start + ms;
      busy[j] += Math.min(ms, Math.max(0, o.durationMs - start));
      t = start + ms + (j < n - 1 ? o.work.transferMs : 0);
    }
    lastMeasured = measured;
    passes++;
    balancer.record(measured);
    mb.passes++;
    if (mb.passes === o.passesPerBlock) {
      if (t <= o.durationMs) {
        const latency = t - mb.blockStart;
        latencies.push(latency);
        if (latency > o.latencyObjectiveMs) missed++;
      }
      mb.passes = 0;
      mb.blockStart = t + o.work.transferMs;
    }
    mb.ready = t + (n > 1 ? o.work.transferMs : 0);
  }
  const blocks = latencies.length;
  return {
    devices: n,
    blocks,
    passes,
    framesDelivered: blocks * o.videoFramesPerBlock,
    fps: (blocks * o.videoFramesPerBlock * 1000) / o.durationMs,
    blockLatencyMs: percentiles(latencies),
    missedDeadlines: missed,
    stageUtilisation: busy.map((b) => b / o.durationMs),
    rebalances: balancer.rebalances,
    initialSplit,
    finalSplit: balancer.split,
    finalImbalance: lastMeasured.length ? imbalance(lastMeasured) : 1,
  };
}
