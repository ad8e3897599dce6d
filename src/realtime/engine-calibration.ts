/**
 * The scheduler's cost model, measured on the real engine: after a warm-up block (the sessions'
 * first runs are slow), the cache is emptied and a throwaway generator runs a few blocks through a
 * timing wrapper (timing-engine.ts) while its cache fills, so the forwards come at every cache
 * length from empty to full; the median time per shape is fitted by `CostModel.fit`
 * (scheduler/cost-model.ts). The work of a block outside its forwards (decode, cache updates, the
 * sampler's arithmetic) is measured as the block's "decode" time (its median over the blocks).
 * Nothing here is a constant: every coefficient comes from timings taken in this process, once per
 * engine setup (cached by `calibrationFor`).
 */
import type { Config } from '../config/schema.js';
import { createEngine } from '../engine/create-engine.js';
import { ForwardBatcher } from '../engine/forward-batcher.js';
import type { Engine } from '../engine/types.js';
import { createGenerator } from '../loop/generator.js';
import { withGeneratedOpening } from '../scene/opening.js';
import { modelDims } from '../model/dims.js';
import { median } from '../util/stats.js';
import { CostModel, type FitQuality, type ForwardSample, type FrameCodecSample } from '../../scheduler/index.js';
import { TimingEngine, type TimedForward } from './timing-engine.js';
import { forwardsPerStep } from './stream-spec.js';

export interface Calibration {
  /** The device the cost model describes (one engine setup of this process). */
  device: string;
  costModel: CostModel;
  quality: FitQuality;
  samples: { forward: ForwardSample[]; decode: FrameCodecSample[] };
  /** Blocks timed (after the warm-up) and the wall time the whole measurement took, ms. */
  blocks: number;
  tookMs: number;
}

export interface MeasureOptions {
  /** Blocks timed after the warm-up (default: enough to fill the cache window, plus two). */
  blocks?: number;
  /** The engine to time (default: the one the config names). */
  createEngine?: (config: Config) => Promise<Engine>;
}

/** The scheduler's name for the device an engine setup runs on, e.g. `ort-cpu`, `native-cuda`. */
export function deviceIdFor(config: Config): string {
  return config.engine.name === 'native' ? 'native-cuda' : `${config.engine.name}-${config.engine.provider}`;
}

/**
 * Blocks of different streams the engine setup runs at once at full speed: a native pipeline's stages
 * are separate GPUs, so while one stream's forward is on one stage another's runs on the next; replicas
 * (engine.placement) run one stream's whole model on each of the same GPUs. (An ONNX Runtime pipeline's
 * stages share the same CPU cores, so they count as one.)
 */
export function blockLanes(config: Config): number {
  return config.engine.name === 'native' ? config.engine.stages : 1;
}

/**
 * Streams whose blocks the engine setup runs as one batch (engine.maxBatch): a native engine on one GPU (a
 * whole-model replica included), whose streams' forwards join one call; 1 where each stream's forward runs alone
 * (ONNX Runtime, a native pipeline over several GPUs: no batched call), which batching would only make take turns.
 */
export function batchedStreams(config: Config): number {
  return config.engine.name === 'native' && config.engine.stages === 1 ? config.engine.maxBatch : 1;
}

/** What the timings depend on: model, decoder, engine, block size, cache window, compression and sparse attention. */
export function calibrationKey(config: Config): string {
  return JSON.stringify({
    model: config.model,
    decoder: config.decoder,
    // engine.maxBatch joins several streams' forwards; one stream's timings do not depend on it (and existing
    // calibrations' keys stay as they were); a setup that batches is also timed batched (see measureCalibration)
    engine: { ...config.engine, maxBatch: undefined },
    batched: batchedStreams(config) >= 2 ? true : undefined,
    blockFrames: config.generation.blockFrames,
    window: config.cache.window,
    compression: config.cache.compression,
    // only when on, so that the keys of existing calibrations stay as they were
    sparse: config.cache.sparse.stride > 1 ? config.cache.sparse : undefined,
  });
}

export async function measureCalibration(given: Config, options: MeasureOptions = {}): Promise<Calibration> {
  const started = performance.now();
  const config = withGeneratedOpening(given);
  const F = config.generation.blockFrames;
  const blocks = options.blocks ?? Math.ceil(config.cache.window / F) + 2;
  const device = deviceIdFor(config);
  const engine = await (options.createEngine ?? createEngine)(config);
  const timing = new TimingEngine(engine, modelDims(config).tokensPerFrame);
  const measured: Array<{ forwards: TimedForward[]; totalMs: number }> = [];
  let batched: TimedForward[] = [];
  try {
    const warm = await createGenerator(config, { engine: timing });
    try {
      await warm.next();
    } finally {
      await warm.close();
    }
    await engine.resetCache();
    const generator = await createGenerator(config, { engine: timing });
    try {
      for (let b = 0; b < blocks; b++) {
        const from = timing.forwards.length;
        const block = await generator.next();
        measured.push({ forwards: timing.forwards.slice(from), totalMs: block.timings.totalMs });
      }
    } finally {
      await generator.close();
    }
    if (batchedStreams(config) >= 2 && engine.batchKey !== undefined && typeof engine.forwardBatch === 'function') {
      batched = await timeBatched(config, engine, options.createEngine ?? createEngine, blocks);
    }
  } finally {
    await engine.close();
  }
  const groups = new Map<string, TimedForward[]>();
  for (const f of [...measured.flatMap((b) => b.forwards), ...batched]) {
    const key = `${f.batch ?? 1}/${f.queryTokens}/${f.cachedTokens}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const forward: ForwardSample[] = [...groups.values()].map((g) => ({
    device,
    batch: g[0].batch ?? 1,
    queryTokens: g[0].queryTokens,
    cachedTokens: g[0].cachedTokens,
    ms: median(g.map((f) => f.ms)),
  }));
  const outside = measured.map((b) => Math.max(0, b.totalMs - b.forwards.reduce((s, f) => s + f.ms, 0)));
  const decode: FrameCodecSample[] = [{ device, latentFrames: F, ms: median(outside) }];
  const { model, quality } = CostModel.fit({ forward, decode });
  return { device, costModel: model, quality: quality[device], samples: { forward, decode }, blocks: measured.length, tookMs: performance.now() - started };
}

/**
 * Forwards of two streams joined into one call, timed (a setup that batches, engine.maxBatch >= 2): a second engine
 * and two generators through a ForwardBatcher for `blocks` blocks, the first block left out (the new engine's first
 * runs). With these beside the single stream's, the fit tells a forward's cost per call (paid once by a batch) from
 * its cost per stream; from one stream's forwards alone the two cannot be told apart.
 */
async function timeBatched(config: Config, engine: Engine, make: (config: Config) => Promise<Engine>, blocks: number): Promise<TimedForward[]> {
  const tokensPerFrame = modelDims(config).tokensPerFrame;
  const forwards: TimedForward[] = [];
  const other = await make(config);
  try {
    await engine.resetCache();
    const batcher = new ForwardBatcher(2);
    // the generators do not close the engines they are given; the members are dropped with the batcher
    const generators = [];
    for (const e of [engine, other]) generators.push(await createGenerator(config, { engine: batcher.member(new TimingEngine(e, tokensPerFrame, forwards)) }));
    let from = 0;
    try {
      for (let b = 0; b < blocks; b++) {
        if (b === 1) from = forwards.length;
        await Promise.all(generators.map((g) => g.next()));
      }
    } finally {
      for (const g of generators) await g.close();
    }
    return forwards.slice(from).filter((f) => (f.batch ?? 1) >= 2);
  } finally {
    await other.close();
  }
}

const cache = new Map<string, Promise<Calibration>>();

/** The calibration of this engine setup, measured on first use and kept for the life of the process. */
export function calibrationFor(config: Config, options: MeasureOptions = {}): Promise<Calibration> {
  const key = calibrationKey(config);
  let entry = cache.get(key);
  if (!entry) {
    entry = measureCalibration(config, options);
    cache.set(key, entry);
    entry.catch(() => cache.delete(key)); // a failed measurement is retried next time
  }
  return entry;
}

/** One line for logs: what a block costs at each step count, from the fitted model. */
export function describeCalibration(c: Calibration, config: Config, steps: readonly number[]): string {
  const dims = modelDims(config);
  const F = config.generation.blockFrames;
  const shape = {
    queryTokens: F * dims.tokensPerFrame,
    cachedTokens: Math.max(0, config.cache.window - F) * dims.tokensPerFrame,
    latentFrames: F,
    forwardsPerStep: forwardsPerStep(config),
  };
  const perSteps = steps.map((s) => `${s} steps ${c.costModel.blockMs(c.device, { ...shape, steps: s }).toFixed(0)} ms`).join(', ');
  return `calibrated ${c.device} on ${c.blocks} blocks in ${(c.tookMs / 1000).toFixed(1)} s: a block with a full cache takes ${perSteps} (forward fit r2 ${c.quality.forward.r2.toFixed(2)})`;
}
