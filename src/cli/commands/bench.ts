/**
 * `sinkstream bench`: runs N blocks of the configured model and cache policy (no encoding) and prints
 * what it measured: per-block wall time, the part inside the engine, the runtime's own overhead,
 * early vs late blocks (a bounded cache must keep them equal) and memory.
 */
import type { Command } from 'commander';
import { addConfigOptions, configFromOptions, type ConfigOptionValues } from '../config-options.js';
import { SinkstreamError } from '../../errors.js';
import { createGenerator } from '../../loop/generator.js';
import { createEngine } from '../../engine/create-engine.js';
import { measureMatmulPeak } from '../../engine/ort/matmul-peak.js';
import { modelDims } from '../../model/dims.js';
import { TimingEngine } from '../../schedule/timing-engine.js';
import { withGeneratedOpening } from '../../scene/opening.js';
import { forwardFlops } from '../../../scheduler/index.js';
import { describeCache } from '../describe.js';
import { median } from '../../util/stats.js';

interface BenchOptions extends ConfigOptionValues {
  blocks: string;
  json?: boolean;
  peak?: boolean;
}

export interface BenchReport {
  config: string;
  engine: string;
  cache: string;
  blocks: number;
  /** decoder.kind ('none': latents only, no video frames). */
  decoder: string;
  /** Latent frames per block (generation.blockFrames). */
  latentFramesPerBlock: number;
  /** Video frames of a block once the stream is under way (0 without a decoder). */
  videoFramesPerBlock: number;
  /** Video frames of the stream's first block (a streaming decoder's first block gives fewer). */
  firstBlockVideoFrames: number;
  msPerBlock: number;
  engineMsPerBlock: number;
  /** Time decoding a block's latents to frames (median of blocks 1..N). */
  decodeMsPerBlock: number;
  /** (msPerBlock - engineMsPerBlock) / msPerBlock: the runtime's own share of a block. */
  overhead: number;
  earlyMsPerBlock: number;
  lateMsPerBlock: number;
  /** lateMsPerBlock / earlyMsPerBlock - 1 */
  lateVsEarly: number;
  /** Latent frames per second: latentFramesPerBlock / msPerBlock. */
  latentFps: number;
  /** Video frames per second, counted in video frames: videoFramesPerBlock / msPerBlock (null without a decoder). */
  videoFps: number | null;
  firstBlockMs: number;
  rssMbEarly: number;
  /** Around the middle block: with rssMbLate, whether memory stays flat once warmed up. */
  rssMbMid: number;
  rssMbLate: number;
  heapMbEarly: number;
  heapMbLate: number;
  cacheRowsLate: number;
  /** Transformer-block FLOPs of a block's forwards (MODEL.md's count; embeddings and head left out), median. */
  gflopPerBlock: number;
  /** Those FLOPs over the time inside the forwards, blocks 1..N. */
  forwardGflops: number;
  /** --peak: a large float32 MatMul on the same provider and threads (ORT CPU only). */
  peakMatmulGflops?: number;
  /** forwardGflops / peakMatmulGflops */
  ofPeak?: number;
}

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('bench')
      .description('measure ms per block, engine share, overhead, early vs late blocks and memory')
      .option('-n, --blocks <n>', 'blocks to run', '500')
      .option('--json', 'print one JSON object')
      .option('--peak', 'also measure a large MatMul on the same provider, the ceiling the forward is compared with (cpu)'),
  ).action(async (options: BenchOptions) => {
    const blocks = Number(options.blocks);
    if (!Number.isInteger(blocks) || blocks < 2) throw new SinkstreamError('ERR_ARGUMENT', `--blocks ${options.blocks}: expected an integer >= 2`);
    const config = withGeneratedOpening(configFromOptions(options));
    if (options.peak && (config.engine.name !== 'ort' || config.engine.provider !== 'cpu')) {
      throw new SinkstreamError('ERR_ARGUMENT', `--peak measures the ORT CPU provider; the config runs ${config.engine.name}/${config.engine.provider}`);
    }
    const dims = modelDims(config);
    const timing = new TimingEngine(await createEngine(config), dims.tokensPerFrame);
    const shape = { dim: dims.dim, layers: dims.layers, ffnDim: config.model.arch.ffnDim, textLen: dims.textLen };
    const generator = await createGenerator(config, { engine: timing }).catch(async (e: unknown) => {
      await timing.close();
      throw e;
    });
    const flops: number[] = [];
    const forwardMs: number[] = [];
    const total: number[] = [];
    const engine: number[] = [];
    const decode: number[] = [];
    const memory: Array<{ rss: number; heap: number }> = [];
    let videoFramesPerBlock = 0;
    let firstBlockVideoFrames = 0;
    let cacheRows = 0;
    try {
      for (let b = 0; b < blocks; b++) {
        const block = await generator.next();
        const forwards = timing.forwards.splice(0);
        flops.push(forwards.reduce((n, f) => n + forwardFlops(shape, f), 0));
        forwardMs.push(forwards.reduce((n, f) => n + f.ms, 0));
        total.push(block.timings.totalMs);
        engine.push(block.timings.engineMs);
        decode.push(block.timings.decodeMs);
        if (b === 0) firstBlockVideoFrames = block.frames.length;
        else videoFramesPerBlock = Math.max(videoFramesPerBlock, block.frames.length);
        const m = process.memoryUsage();
        memory.push({ rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 });
        cacheRows = generator.engineInfo().cacheRows;
        if (!options.json && process.stderr.isTTY) process.stderr.write(`\rblock ${b + 1}/${blocks}: ${block.timings.totalMs.toFixed(1)} ms`);
      }
    } finally {
      await generator.close();
      await timing.close();
    }
    if (!options.json && process.stderr.isTTY) process.stderr.write('\n');
    const k = Math.min(10, Math.floor(blocks / 2));
    // Block 0 attends to an empty cache and pays one-time costs; "early" is blocks 1-10.
    const early = total.slice(1, 1 + k);
    const late = total.slice(-k);
    const steady = total.slice(1);
    const msPerBlock = median(steady);
    const engineMsPerBlock = median(engine.slice(1));
    const memEarly = memory.slice(1, 1 + k);
    const memLate = memory.slice(-k);
    const report: BenchReport = {
      config: options.config ?? 'configs/default.yaml',
      engine: `${config.engine.name}/${config.engine.provider}`,
      cache: describeCache(config.cache),
      blocks,
      decoder: config.decoder.kind,
      latentFramesPerBlock: config.generation.blockFrames,
      videoFramesPerBlock,
      firstBlockVideoFrames,
      msPerBlock,
      engineMsPerBlock,
      decodeMsPerBlock: median(decode.slice(1)),
      overhead: (msPerBlock - engineMsPerBlock) / msPerBlock,
      earlyMsPerBlock: median(early),
      lateMsPerBlock: median(late),
      lateVsEarly: median(late) / median(early) - 1,
      latentFps: (config.generation.blockFrames * 1000) / msPerBlock,
      videoFps: videoFramesPerBlock > 0 ? (videoFramesPerBlock * 1000) / msPerBlock : null,
      firstBlockMs: total[0],
      rssMbEarly: median(memEarly.map((m) => m.rss)),
      rssMbMid: median(memory.slice(Math.floor(blocks / 2) - Math.floor(k / 2), Math.floor(blocks / 2) + Math.ceil(k / 2)).map((m) => m.rss)),
      rssMbLate: median(memLate.map((m) => m.rss)),
      heapMbEarly: median(memEarly.map((m) => m.heap)),
      heapMbLate: median(memLate.map((m) => m.heap)),
      cacheRowsLate: cacheRows,
      gflopPerBlock: median(flops.slice(1)) / 1e9,
      forwardGflops: flops.slice(1).reduce((a, b) => a + b, 0) / forwardMs.slice(1).reduce((a, b) => a + b, 0) / 1e6,
    };
    if (options.peak) {
      report.peakMatmulGflops = (await measureMatmulPeak(config.engine.threads)).gflops;
      report.ofPeak = report.forwardGflops / report.peakMatmulGflops;
    }
    if (options.json) {
      process.stdout.write(JSON.stringify(report) + '\n');
      return;
    }
    const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
    process.stdout.write(
      [
        `config            ${report.config} (${report.engine}, cache ${report.cache})`,
        `blocks            ${blocks} x ${report.latentFramesPerBlock} latent frames` +
          (videoFramesPerBlock > 0 ? ` -> ${videoFramesPerBlock} video frames (first block ${firstBlockVideoFrames}, decoder ${report.decoder})` : ' (no decoder)'),
        `ms per block      ${msPerBlock.toFixed(2)} (engine ${engineMsPerBlock.toFixed(2)}, decode ${report.decodeMsPerBlock.toFixed(2)})`,
        `overhead          ${pct(report.overhead)} of the block`,
        `early vs late     ${report.earlyMsPerBlock.toFixed(2)} ms (blocks 1-${k}) vs ${report.lateMsPerBlock.toFixed(2)} ms (last ${k}): ${report.lateVsEarly >= 0 ? '+' : ''}${pct(report.lateVsEarly)}`,
        `generation fps    ${report.videoFps === null ? '-' : report.videoFps.toFixed(1)} video frames/s, ${report.latentFps.toFixed(1)} latent frames/s`,
        `first block       ${report.firstBlockMs.toFixed(1)} ms`,
        `memory (rss)      ${report.rssMbEarly.toFixed(0)} MB early, ${report.rssMbMid.toFixed(0)} MB mid-run, ${report.rssMbLate.toFixed(0)} MB late (heap ${report.heapMbEarly.toFixed(0)} -> ${report.heapMbLate.toFixed(0)} MB)`,
        `cache rows        ${report.cacheRowsLate} per layer at the end`,
        `compute           ${report.gflopPerBlock.toFixed(2)} GFLOP per block, ${report.forwardGflops.toFixed(1)} GFLOP/s in the forwards` +
          (report.peakMatmulGflops ? ` (${pct(report.ofPeak!)} of a ${report.peakMatmulGflops.toFixed(1)} GFLOP/s MatMul here)` : ''),
      ].join('\n') + '\n',
    );
  });
}
