/**
 * `sinkstream bench --streams N[,N...]`: N streams generating at once in this process through the real generator,
 * each on its own engine (the engines share one copy of the weights where the engine allows it), for every N given:
 * their forwards joined into batched engine calls when engine.maxBatch >= 2 (ForwardBatcher), else each stream's
 * forwards alone, the streams taking turns on the device. Reports the frames per second of all streams together
 * and each stream's block period in the late half of the run (where the cache has filled).
 */
import type { Config } from '../../config/schema.js';
import { patchConfig } from '../../config/load.js';
import { createEngine } from '../../engine/create-engine.js';
import { ForwardBatcher } from '../../engine/forward-batcher.js';
import type { Engine } from '../../engine/types.js';
import { createGenerator, type BlockGenerator } from '../../loop/generator.js';
import type { FrameBlock } from '../../loop/types.js';
import { median } from '../../util/stats.js';
import { ranOn, type RanOn } from '../ran-on.js';
import { describeCache } from '../describe.js';

/** One run of `streams` streams at once. */
export interface StreamsRun {
  streams: number;
  /** Forwards joined into batched engine calls (engine.maxBatch >= 2, several streams, an engine that batches), else each one alone. */
  batched: boolean;
  /** Forwards per engine call, on average (1 when not batched). */
  forwardsPerCall: number;
  /** The most forwards one engine call joined. */
  largestCall: number;
  blocksPerStream: number;
  /** Latent frames per second of all streams together, in the late half (see lateFrom). */
  latentFps: number;
  /** Video frames per second of all streams together (null without a decoder). */
  videoFps: number | null;
  /** One stream's period between blocks handed out (block latency at this load), median over streams and late blocks, ms. */
  msPerBlock: number;
  /** Each stream's median late period, ms. */
  perStreamMsPerBlock: number[];
  /** Block 0's wall time (the generator's totalMs), median over streams, ms. */
  firstBlockMs: number;
  /** The late half: blocks from this index on are counted. */
  lateFrom: number;
}

export interface StreamsReport extends RanOn {
  config: string;
  cache: string;
  decoder: string;
  latentFramesPerBlock: number;
  videoFramesPerBlock: number;
  /** engine.maxBatch as configured. */
  maxBatch: number;
  runs: StreamsRun[];
}

/** Figures of one run from each stream's block hand-out times (ms, performance.now()) and blocks. */
export function streamsFigures(
  handedOutAt: number[][],
  blocks: Array<Array<Pick<FrameBlock, 'frames' | 'timings'>>>,
  latentFramesPerBlock: number,
): Pick<StreamsRun, 'latentFps' | 'videoFps' | 'msPerBlock' | 'perStreamMsPerBlock' | 'firstBlockMs' | 'lateFrom'> {
  const n = handedOutAt[0].length;
  const lateFrom = Math.max(1, Math.floor(n / 2));
  // from the moment every stream has handed out block lateFrom - 1 to the last block handed out
  const start = Math.max(...handedOutAt.map((h) => h[lateFrom - 1]));
  const end = Math.max(...handedOutAt.map((h) => h[n - 1]));
  let latent = 0;
  let video = 0;
  for (const [s, times] of handedOutAt.entries()) {
    for (let b = lateFrom; b < n; b++) {
      if (times[b] <= start) continue;
      latent += latentFramesPerBlock;
      video += blocks[s][b].frames.length;
    }
  }
  const seconds = (end - start) / 1000;
  const periods = handedOutAt.map((h) => h.slice(lateFrom).map((t, i) => t - h[lateFrom - 1 + i]));
  return {
    latentFps: latent / seconds,
    videoFps: video > 0 ? video / seconds : null,
    msPerBlock: median(periods.flat()),
    perStreamMsPerBlock: periods.map((p) => median(p)),
    firstBlockMs: median(blocks.map((b) => b[0].timings.totalMs)),
    lateFrom,
  };
}

/** Runs `blocks` blocks on each of the first `n` engines at once; generators made with `configFor(i)`. */
async function runOnce(
  engines: Engine[],
  n: number,
  blocks: number,
  configFor: (i: number) => Config,
  maxBatch: number,
): Promise<{ run: StreamsRun; first: BlockGenerator; closeFirst: () => Promise<void> }> {
  // engines that cannot join one call (no batch key: ORT, a pipeline) would only take turns through the batcher
  const batched = maxBatch >= 2 && n >= 2 && engines[0].batchKey !== undefined;
  const batcher = batched ? new ForwardBatcher(maxBatch) : null;
  const used = engines.slice(0, n);
  for (const e of used) await e.resetCache();
  const generators: BlockGenerator[] = [];
  try {
    for (let i = 0; i < n; i++) generators.push(await createGenerator(configFor(i), { engine: batcher ? batcher.member(used[i]) : used[i] }));
    const handedOutAt: number[][] = generators.map(() => []);
    const got: FrameBlock[][] = generators.map(() => []);
    // every stream asks for its next block one ahead, as bench's single stream does
    await Promise.all(
      generators.map(async (g, s) => {
        let ahead = g.next();
        for (let b = 0; b < blocks; b++) {
          const block = await ahead;
          handedOutAt[s].push(performance.now());
          if (b + 1 < blocks) ahead = g.next();
          got[s].push(block);
        }
      }),
    );
    const stats = batcher?.stats();
    const run: StreamsRun = {
      streams: n,
      batched,
      forwardsPerCall: stats && stats.calls > 0 ? stats.forwards / stats.calls : 1,
      largestCall: stats?.largest ?? 1,
      blocksPerStream: blocks,
      ...streamsFigures(handedOutAt, got, configFor(0).generation.blockFrames),
    };
    const [first, ...rest] = generators;
    for (const g of rest) await g.close();
    return { run, first, closeFirst: () => first.close() };
  } catch (e) {
    for (const g of generators) await g.close();
    throw e;
  }
}

/**
 * The runs for every count in `counts` on one set of engines (created once, the largest count of them; the first
 * stream's warm-up builds the plans every engine of the process shares, later streams start without one).
 */
export async function runStreams(config: Config, counts: number[], blocks: number, configName: string, alsoTurns = false): Promise<StreamsReport> {
  const most = Math.max(...counts);
  const engines: Engine[] = [];
  let ran: RanOn | null = null;
  let videoFramesPerBlock = 0;
  const runs: StreamsRun[] = [];
  let generatorsMade = 0;
  const configFor = (i: number): Config => {
    const warm = generatorsMade++ === 0 ? {} : { engine: { warmup: false } };
    return patchConfig(config, [{ generation: { seed: config.generation.seed + i }, ...warm }], 'bench --streams');
  };
  try {
    for (let i = 0; i < most; i++) engines.push(await createEngine(config));
    for (const n of counts) {
      // alsoTurns: the same count taking turns too, right after, on the same engines
      const maxBatches = alsoTurns && n >= 2 && config.engine.maxBatch >= 2 ? [config.engine.maxBatch, 1] : [config.engine.maxBatch];
      for (const maxBatch of maxBatches) {
        const { run, first, closeFirst } = await runOnce(engines, n, blocks, configFor, maxBatch);
        try {
          ran ??= ranOn(first.engineInfo(), first.decoderBackend());
          videoFramesPerBlock = Math.max(videoFramesPerBlock, first.framesOfBlock(1));
        } finally {
          await closeFirst();
        }
        runs.push(run);
      }
    }
  } finally {
    for (const e of engines) await e.close();
  }
  return {
    config: configName,
    ...ran!,
    cache: describeCache(config.cache),
    decoder: config.decoder.kind,
    latentFramesPerBlock: config.generation.blockFrames,
    videoFramesPerBlock,
    maxBatch: config.engine.maxBatch,
    runs,
  };
}

/** bench --streams' text lines. */
export function describeStreams(report: StreamsReport): string {
  const lines = [
    `config            ${report.config} (cache ${report.cache})`,
    `engine            ${report.engine}`,
    `decoder           ${report.decoder}`,
    `engine.maxBatch   ${report.maxBatch}`,
  ];
  for (const r of report.runs) {
    lines.push(
      `${`${r.streams} stream${r.streams > 1 ? 's' : ''}`.padEnd(18)}${r.batched ? `batched (${r.forwardsPerCall.toFixed(2)} forwards a call, at most ${r.largestCall})` : 'taking turns'}: ` +
        `${r.videoFps === null ? '-' : r.videoFps.toFixed(1)} video frames/s, ${r.latentFps.toFixed(1)} latent frames/s in all; ` +
        `block period ${r.msPerBlock.toFixed(1)} ms a stream (first block ${r.firstBlockMs.toFixed(1)} ms; blocks ${r.lateFrom}-${r.blocksPerStream - 1} of ${r.blocksPerStream})`,
    );
  }
  return lines.join('\n') + '\n';
}
