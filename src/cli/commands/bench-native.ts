/**
 * `sinkstream bench`'s native-engine figures: where a forward's time goes between Node and the GPU (the addon's
 * own timing of every forward against the time JavaScript waited for it), the same block's engine work run from C
 * with nothing in between (--c-loop), and a second stream started in the warm process (--second-stream): its
 * engine shares the first one's weights and cuDNN plans, so its first block should cost what a steady one does.
 */
import type { Config } from '../../config/schema.js';
import { createEngine } from '../../engine/create-engine.js';
import type { NativeForwardStats } from '../../engine/native/addon-types.js';
import { NativeEngine, PROFILE_PHASES, type BlockLoopResult, type PhaseMs } from '../../engine/native/native-engine.js';
import { createGenerator } from '../../loop/generator.js';
import { gaussianNoise } from '../../loop/noise.js';
import { warpedSigmas } from '../../loop/timesteps.js';
import { modelDims } from '../../model/dims.js';
import { median } from '../../util/stats.js';

/** Per forward of the stream (means), from the addon's own timing and from JavaScript's side of the same calls. */
export interface NativeEngineTimings {
  forwards: number;
  /** From the call in JavaScript to its promise settling (queue, thread-pool hop, the forward, the hop back). */
  jsMsPerForward: number;
  /** Inside the addon's forward, on the thread-pool thread. */
  wallMsPerForward: number;
  /** Entry to the work enqueued (input copies, kernel launches or one graph launch). */
  issueMsPerForward: number;
  /** On the GPU: input copies .. output copy (CUDA events). */
  gpuMsPerForward: number;
  /** The engine idle before each forward: since its previous forward or cache update returned (the host's turn). */
  idleMsPerForward: number;
  /** jsMsPerForward - wallMsPerForward: getting into and out of the addon. */
  hopMsPerForward: number;
  /** wallMsPerForward - gpuMsPerForward: host time inside the call that the GPU did not cover. */
  hostInCallMsPerForward: number;
  cudaGraphs: boolean;
  graphLaunches: number;
  graphCaptures: number;
  /** A capture failed and the engine went back to direct launches. */
  graphFallback: boolean;
}

export function engineTimings(stats: NativeForwardStats, jsForwardMs: readonly number[], cudaGraphs: boolean): NativeEngineTimings | null {
  const n = stats.forwards;
  if (n <= 0 || jsForwardMs.length === 0) return null;
  const js = jsForwardMs.reduce((a, b) => a + b, 0) / jsForwardMs.length;
  const wall = stats.wallMs / n;
  const gpu = stats.gpuMs / n;
  return {
    forwards: n,
    jsMsPerForward: js,
    wallMsPerForward: wall,
    issueMsPerForward: stats.issueMs / n,
    gpuMsPerForward: gpu,
    idleMsPerForward: stats.idleMs / n,
    hopMsPerForward: js - wall,
    hostInCallMsPerForward: wall - gpu,
    cudaGraphs,
    graphLaunches: stats.graphLaunches,
    graphCaptures: stats.graphCaptures,
    graphFallback: stats.graphFallback > 0,
  };
}

/** The stream's late blocks against the same engine work run from C, in the same process, at the same cache size. */
export interface NodeVsC {
  blocks: number;
  cacheRows: number;
  /** C: a block's forwards (steps + clean pass), its update, the whole block (host arithmetic included); medians. */
  cForwardsMs: number;
  cUpdateMs: number;
  cBlockMs: number;
  /** Node, the stream's late blocks: the forwards as JavaScript timed them, all engine calls, the period; medians. */
  nodeForwardsMs: number;
  nodeEngineMs: number;
  nodeBlockMs: number;
  /** nodeForwardsMs / cForwardsMs: 1.00 = the Node path's forwards cost what C's do (issue 18's target: within 2 %). */
  forwardsRatio: number;
  /** nodeEngineMs / (cForwardsMs + cUpdateMs) */
  engineRatio: number;
  /** nodeBlockMs / cBlockMs: the whole period, the host's JavaScript between the calls included. */
  blockRatio: number;
}

export function compareNodeWithC(
  node: { forwardsMs: readonly number[]; engineMs: readonly number[]; blockMs: readonly number[] },
  c: BlockLoopResult,
  cacheRows: number,
): NodeVsC {
  const cForwardsMs = median(c.forwardsMs);
  const cUpdateMs = median(c.updateMs);
  const cBlockMs = median(c.blockMs);
  const nodeForwardsMs = median(node.forwardsMs);
  const nodeEngineMs = median(node.engineMs);
  const nodeBlockMs = median(node.blockMs);
  return {
    blocks: c.blockMs.length,
    cacheRows,
    cForwardsMs,
    cUpdateMs,
    cBlockMs,
    nodeForwardsMs,
    nodeEngineMs,
    nodeBlockMs,
    forwardsRatio: nodeForwardsMs / cForwardsMs,
    engineRatio: nodeEngineMs / (cForwardsMs + cUpdateMs),
    blockRatio: nodeBlockMs / cBlockMs,
  };
}

/** The C loop on the engine's cache as the stream left it (the late blocks' size), with the stream's sigmas. */
export function runCLoop(engine: NativeEngine, config: Config, blocks: number): Promise<BlockLoopResult> {
  const dims = modelDims(config);
  const F = config.generation.blockFrames;
  return engine.loopBlocks({
    noise: gaussianNoise(dims.latentChannels * F * dims.latentHeight * dims.latentWidth, config.generation.seed, 0, 0),
    sigmas: warpedSigmas(config.generation.steps, config.generation.shift),
    framePositions: Int32Array.from({ length: F }, (_, f) => f),
    blocks,
    sinkRows: config.cache.policy === 'window' ? 0 : config.cache.sink * dims.tokensPerFrame,
  });
}

/** --phases: where a block's device time goes, the C loop's blocks profiled on the cache as the stream left it. */
export interface BlockPhases {
  blocks: number;
  cacheRows: number;
  /** Device ms per block in each phase (the block's forwards; the cache update is apart, below). */
  msPerBlock: PhaseMs;
  /** The phases' sum: the forwards' device time (events between phases; no CUDA graphs while profiled). */
  forwardsMsPerBlock: number;
  /** Medians of the profiled blocks: the cache update, and the whole block as the C loop timed it. */
  updateMs: number;
  blockMs: number;
}

export async function runPhases(engine: NativeEngine, config: Config, blocks: number): Promise<BlockPhases> {
  const cacheRows = engine.info().cacheRows;
  const { result, phaseMs } = await engine.profiled(() => runCLoop(engine, config, blocks));
  const msPerBlock = Object.fromEntries(PROFILE_PHASES.map((name) => [name, phaseMs[name] / blocks])) as PhaseMs;
  return {
    blocks,
    cacheRows,
    msPerBlock,
    forwardsMsPerBlock: PROFILE_PHASES.reduce((sum, name) => sum + msPerBlock[name], 0),
    updateMs: median(result.updateMs),
    blockMs: median(result.blockMs),
  };
}

/** A second stream in the same process while the first engine is alive (shared weights and plans). */
export interface SecondStream {
  blocks: number;
  /** Creating its engine (weights shared: nothing read or uploaded). */
  engineMs: number;
  /** Its createGenerator: prompt, decoder, engine.warmup. */
  generatorMs: number;
  warmupMs: number;
  /** cuDNN plans its engine built itself, and those it found built by the first (null: not the native engine). */
  attentionPlansBuilt: number | null;
  attentionPlansReused: number | null;
  firstBlockMs: number;
  /** Median of its blocks 1..N. */
  steadyMsPerBlock: number;
  /** firstBlockMs / steadyMsPerBlock - 1 (issue 18's target: at most +10 %). */
  firstVsSteady: number;
}

export async function runSecondStream(config: Config, blocks: number): Promise<SecondStream> {
  const e0 = performance.now();
  const engine = await createEngine(config);
  const engineMs = performance.now() - e0;
  try {
    const g0 = performance.now();
    const generator = await createGenerator(config, { engine });
    const generatorMs = performance.now() - g0;
    const total: number[] = [];
    try {
      for (let b = 0; b < blocks; b++) total.push((await generator.next()).timings.totalMs);
    } finally {
      await generator.close();
    }
    const plans = engine instanceof NativeEngine ? await engine.attentionPlans() : null;
    const steady = median(total.slice(1));
    return {
      blocks,
      engineMs,
      generatorMs,
      warmupMs: generator.startup.warmupMs,
      attentionPlansBuilt: plans ? plans.built : null,
      attentionPlansReused: plans ? plans.reused : null,
      firstBlockMs: total[0],
      steadyMsPerBlock: steady,
      firstVsSteady: total[0] / steady - 1,
    };
  } finally {
    await engine.close();
  }
}
