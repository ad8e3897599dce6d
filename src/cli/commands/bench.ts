/**
 * `sinkstream bench`: runs N blocks of the configured model and cache policy and prints what it
 * measured: per-block wall time, the part inside the engine, the runtime's own overhead, early vs late
 * blocks (a bounded cache must keep them equal), memory, and the whole pipeline: one-time startup costs,
 * time to first frame, decode and (with a decoder, when ffmpeg is found, or --encode) the real H.264
 * encoder, with the period split by phase. The blocks are asked for one ahead (a pipeline of depth 1),
 * so a block's decode and encode overlap the next block's forwards.
 */
import type { Command } from 'commander';
import { addConfigOptions, configFromOptions, type ConfigOptionValues } from '../config-options.js';
import { SinkstreamError } from '../../errors.js';
import { createGenerator } from '../../loop/generator.js';
import { createEngine } from '../../engine/create-engine.js';
import { modelDims } from '../../model/dims.js';
import { TimingEngine } from '../../realtime/timing-engine.js';
import { withGeneratedOpening } from '../../scene/opening.js';
import { forwardFlops } from '../../../scheduler/index.js';
import { describeCache } from '../describe.js';
import { ranOn, type RanOn } from '../ran-on.js';
import { describeDecoderBackend } from '../../decode/decoder.js';
import { median } from '../../util/stats.js';
import { resolveFfmpegPath } from '../../encode/ffmpeg-path.js';
import { EncodeMeter, type EncodeFigures } from '../../encode/encode-meter.js';
import { encoderOptionsFor } from '../../encode/encoder-settings.js';
import type { FrameBlock } from '../../loop/types.js';
import { PIPELINE_TARGETS, phaseSplit, callTimedEngine, type EngineCall, type PhaseSplit } from './bench-pipeline.js';
import { NativeEngine, PROFILE_PHASES } from '../../engine/native/native-engine.js';
import { compareNodeWithC, engineTimings, runCLoop, runPhases, runSecondStream, type BlockPhases, type NativeEngineTimings, type NodeVsC, type SecondStream } from './bench-native.js';
import { describeStreams, runStreams } from './bench-streams.js';

interface BenchOptions extends ConfigOptionValues {
  blocks: string;
  json?: boolean;
  peak?: boolean;
  /** true: --encode (ffmpeg required); false: --no-encode; undefined: encode when there is a decoder and ffmpeg. */
  encode?: boolean;
  /** Native engine: blocks of the same engine work run from C after the stream (0: none). */
  cLoop: string;
  /** Blocks of a second stream started after the first in the same process (0: none). */
  secondStream: string;
  phases: string;
  /** Streams generating at once, e.g. '4' or '1,2,4,8' (one run per count); absent: the one-stream bench. */
  streams?: string;
  /** --streams with engine.maxBatch >= 2: every count of 2 or more taking turns too. */
  alsoTurns?: boolean;
}

/** --streams' counts: positive integers, comma-separated. */
export function parseStreamCounts(text: string): number[] {
  const counts = text.split(',').map((t) => Number(t.trim()));
  if (text.trim() === '' || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) {
    throw new SinkstreamError('ERR_ARGUMENT', `--streams ${text}: expected stream counts from 1 to 64, comma-separated (e.g. 4 or 1,2,4,8)`);
  }
  return counts;
}

/** One-time costs before the stream's first block, ms. */
export interface BenchStartup {
  /** Building the engine: the addon or sessions, the weights loaded and uploaded. */
  engineMs: number;
  /** Opening the decoder (its weights, its own plans and warm-up). */
  decoderOpenMs: number;
  /** engine.warmup: forwards at every cache size the stream will attend and a decoder warm-up (0: off). */
  warmupMs: number;
  /** Warm-up forwards run (one per cache size), 0 when off. */
  warmupForwards: number;
  /** All of createGenerator (text encoder, prompt, decoder, warm-up; the engine was built before). */
  generatorMs: number;
}

/** The encoder phase: the real ffmpeg (x264, output.preset / crf) writing a temporary file. */
export type BenchEncode =
  | {
      available: true;
      frames: number;
      /** Median time ffmpeg took a block's frames in (blocks 1..N), ms. */
      msPerBlock: number | null;
      /** Frames over first frame written .. ffmpeg's exit, during the stream (at most the rate the frames came). */
      encoderFps: number;
      /**
       * The encoder alone, fed as fast as it takes them: the stream's last frames, repeated to
       * CAPACITY_FRAMES (repeats every block, so a little easier than fresh frames).
       */
      capacityFps: number;
      /** Whether the encoder's capacity is at least the generation's rate (pipeline.videoFps). */
      keepsUp: boolean;
      /** Backlog after the last frame: last frame handed over .. ffmpeg's exit, ms. */
      drainMs: number;
      preset: string;
      bytes: number;
    }
  | { available: false; reason: string };

export interface BenchPipeline {
  /** Time to first frame: the stream's first next() to block 0's frames in hand (startup excluded), ms. */
  ttffMs: number;
  /** Video frames in that first block. */
  firstBlockVideoFrames: number;
  /** Median period between blocks handed out (blocks 1..N), ms. */
  msPerBlock: number;
  /** Video frames per second in the steady state: videoFramesPerBlock / msPerBlock (null without a decoder). */
  videoFps: number | null;
  /** All video frames over the whole stream: first next() to the last frame handed out, or encoded with encoding. */
  endToEndVideoFps: number | null;
  decodeMsPerBlock: number | null;
  encodeMsPerBlock: number | null;
  encode: BenchEncode;
  split: PhaseSplit;
  /** The issue's targets (TAEHV at 832x480 on one H200): whether this run met them. */
  targets: { videoFps: number; ttffMs: number; videoFpsMet: boolean | null; ttffMet: boolean };
}

export interface BenchReport extends RanOn {
  config: string;
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
  /** Block 0's wall time (it attends an empty cache and pays what was not warmed up), apart from the steady msPerBlock. */
  firstBlockMs: number;
  /** firstBlockMs / msPerBlock - 1: what the first block costs over a steady one. */
  firstVsSteady: number;
  rssMbEarly: number;
  /** Around the middle block: with rssMbLate, whether memory stays flat once warmed up. */
  rssMbMid: number;
  rssMbLate: number;
  heapMbEarly: number;
  heapMbLate: number;
  cacheRowsLate: number;
  /** Transformer-block FLOPs of a block's forwards (docs/model.md's count; embeddings and head left out), median. */
  gflopPerBlock: number;
  /** Those FLOPs over the time inside the forwards, blocks 1..N. */
  forwardGflops: number;
  /** --peak: a large float32 MatMul on the same provider and threads (ORT CPU only). */
  peakMatmulGflops?: number;
  /** forwardGflops / peakMatmulGflops */
  ofPeak?: number;
  startup: BenchStartup;
  pipeline: BenchPipeline;
  /** Native engine: the addon's timing of the stream's forwards against JavaScript's (null for other engines). */
  engineTimings: NativeEngineTimings | null;
  /** --c-loop: the late blocks' engine work against the same work run from C in this process (null without). */
  nodeVsC: NodeVsC | null;
  /** --second-stream: a second stream's first block against its steady blocks, in the warm process (null without). */
  secondStream: SecondStream | null;
  /** --phases: device ms per block in each phase of the forwards, C-loop blocks profiled after the stream (null without). */
  phases: BlockPhases | null;
}

/** Frames the encoder is fed alone to measure its capacity. */
const CAPACITY_FRAMES = 96;

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('bench')
      .description('measure ms per block, engine share, overhead, early vs late blocks and memory')
      .option('-n, --blocks <n>', 'blocks to run', '500')
      .option('--json', 'print one JSON object')
      .option('--peak', 'also measure a large MatMul on the same provider, the ceiling the forward is compared with (cpu)')
      .option('--encode', 'encode the frames with ffmpeg (H.264, output.preset / crf) and measure it; an error without ffmpeg (default: when there is a decoder and ffmpeg is found)')
      .option('--no-encode', 'leave the encoder out')
      .option('--c-loop <n>', "native engine: after the stream, run n blocks of the same engine work from C (no JavaScript between the calls) and compare (nodeVsC)", '0')
      .option('--phases <n>', 'native engine: after the stream, run n blocks of its engine work from C with the profile on: device ms per block in each phase (products, self-attention, cross-attention, elementwise, embedding, head)', '0')
      .option('--second-stream <n>', 'after the stream, start a second one in this process (its own engine, weights and plans shared) and run n blocks: its first block against its steady ones', '0')
      .option('--streams <n[,n...]>', 'n streams generating at once in this process, --blocks each (one run per count): frames/s of all together and each stream\'s block period; batched when engine.maxBatch >= 2, else taking turns')
      .option('--also-turns', '--streams with engine.maxBatch >= 2: run every count of 2 or more taking turns too, on the same engines'),
  ).action(async (options: BenchOptions) => {
    const blocks = Number(options.blocks);
    if (!Number.isInteger(blocks) || blocks < 2) throw new SinkstreamError('ERR_ARGUMENT', `--blocks ${options.blocks}: expected an integer >= 2`);
    if (options.alsoTurns && options.streams === undefined) throw new SinkstreamError('ERR_ARGUMENT', '--also-turns goes with --streams');
    if (options.streams !== undefined) {
      const counts = parseStreamCounts(options.streams);
      const others = [
        ['--c-loop', options.cLoop !== '0'],
        ['--second-stream', options.secondStream !== '0'],
        ['--phases', options.phases !== '0'],
        ['--peak', options.peak === true],
        ['--encode', options.encode === true],
      ].filter(([, given]) => given);
      if (others.length > 0) throw new SinkstreamError('ERR_ARGUMENT', `--streams runs on its own: leave out ${others.map(([name]) => name).join(', ')}`);
      const config = withGeneratedOpening(configFromOptions(options));
      if (options.alsoTurns && config.engine.maxBatch < 2) throw new SinkstreamError('ERR_ARGUMENT', `--also-turns compares batched streams with streams taking turns: set engine.maxBatch >= 2 (got ${config.engine.maxBatch})`);
      const report = await runStreams(config, counts, blocks, options.config ?? 'configs/default.yaml', options.alsoTurns === true);
      process.stdout.write(options.json ? JSON.stringify(report) + '\n' : describeStreams(report));
      return;
    }
    const cLoopBlocks = Number(options.cLoop);
    if (!Number.isInteger(cLoopBlocks) || cLoopBlocks < 0) throw new SinkstreamError('ERR_ARGUMENT', `--c-loop ${options.cLoop}: expected an integer >= 0`);
    const phaseBlocks = Number(options.phases);
    if (!Number.isInteger(phaseBlocks) || phaseBlocks < 0) throw new SinkstreamError('ERR_ARGUMENT', `--phases ${options.phases}: expected an integer >= 0`);
    const secondBlocks = Number(options.secondStream);
    if (!Number.isInteger(secondBlocks) || secondBlocks < 0 || secondBlocks === 1) {
      throw new SinkstreamError('ERR_ARGUMENT', `--second-stream ${options.secondStream}: expected 0 or an integer >= 2`);
    }
    const config = withGeneratedOpening(configFromOptions(options));
    if (options.peak && (config.engine.name !== 'ort' || config.engine.provider !== 'cpu')) {
      throw new SinkstreamError('ERR_ARGUMENT', `--peak measures the ORT CPU provider; the config runs ${config.engine.name}/${config.engine.provider}`);
    }
    for (const [flag, n] of [['--c-loop', cLoopBlocks], ['--phases', phaseBlocks]] as const) {
      if (n > 0 && config.engine.name !== 'native') {
        throw new SinkstreamError('ERR_ARGUMENT', `${flag} runs the native engine's C loop; the config runs engine.name '${config.engine.name}'`);
      }
    }
    if (options.encode === true && config.decoder.kind === 'none') {
      throw new SinkstreamError('ERR_ARGUMENT', "--encode: decoder.kind is 'none' (latents only): there are no frames to encode");
    }
    let encode: BenchEncode = { available: false, reason: "decoder.kind 'none': no frames" };
    let ffmpegPath: string | null = null;
    if (config.decoder.kind !== 'none') {
      if (options.encode === false) encode = { available: false, reason: '--no-encode' };
      else {
        try {
          ffmpegPath = resolveFfmpegPath().path;
        } catch (e) {
          if (options.encode === true) throw e;
          encode = { available: false, reason: (e as Error).message };
        }
      }
    }
    const dims = modelDims(config);
    const calls: EngineCall[] = [];
    const e0 = performance.now();
    const rawEngine = await createEngine(config);
    const native = rawEngine instanceof NativeEngine ? rawEngine : null;
    const timing = new TimingEngine(callTimedEngine(rawEngine, calls), dims.tokensPerFrame);
    const engineStartMs = performance.now() - e0;
    const shape = { dim: dims.dim, layers: dims.layers, ffnDim: config.model.arch.ffnDim, textLen: dims.textLen };
    const g0 = performance.now();
    const generator = await createGenerator(config, { engine: timing }).catch(async (e: unknown) => {
      await timing.close();
      throw e;
    });
    const generatorMs = performance.now() - g0;
    // The warm-up's forwards are startup, not the stream's.
    timing.forwards.splice(0);
    calls.splice(0);
    await native?.forwardStats(true);
    const jsForwardMs: number[] = [];
    let timings: NativeEngineTimings | null = null;
    let nodeVsC: NodeVsC | null = null;
    let secondStream: SecondStream | null = null;
    let phases: BlockPhases | null = null;
    const meter = ffmpegPath
      ? EncodeMeter.open(ffmpegPath, encoderOptionsFor(config, generator, generator.fps))
      : null;
    const handedOutAt: number[] = [];
    let streamStart = 0;
    let encoded: EncodeFigures | null = null;
    let totalVideoFrames = 0;
    let lastFrames: Uint8Array[] = [];
    let capacityFps = 0;
    const flops: number[] = [];
    const forwardMs: number[] = [];
    const total: number[] = [];
    const engine: number[] = [];
    const decode: number[] = [];
    const memory: Array<{ rss: number; heap: number }> = [];
    let videoFramesPerBlock = 0;
    let firstBlockVideoFrames = 0;
    let cacheRows = 0;
    // What ran, asked of the engine and the decoder themselves while they are open.
    const ran = ranOn(generator.engineInfo(), generator.decoderBackend());
    try {
      streamStart = performance.now();
      // One block asked for ahead: the next block's forwards run while this one is decoded and encoded.
      const ask = (): Promise<FrameBlock> => {
        const p = generator.next();
        p.catch(() => undefined); // awaited in turn below
        return p;
      };
      let ahead = ask();
      for (let b = 0; b < blocks; b++) {
        const block = await ahead;
        handedOutAt.push(performance.now());
        if (b + 1 < blocks) ahead = ask();
        meter?.writeBlock(block.frames);
        totalVideoFrames += block.frames.length;
        if (block.frames.length > 0) lastFrames = block.frames;
        const forwards = timing.forwards.splice(0);
        for (const f of forwards) jsForwardMs.push(f.ms);
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
      if (meter) encoded = await meter.finish();
      if (ffmpegPath && lastFrames.length > 0) {
        const alone = EncodeMeter.open(ffmpegPath, encoderOptionsFor(config, generator, generator.fps));
        alone.writeBlock(Array.from({ length: CAPACITY_FRAMES }, (_, i) => lastFrames[i % lastFrames.length]));
        capacityFps = (await alone.finish()).encoderFps;
      }
      await generator.close(); // its last clean pass done; the engine stays open for what follows
      if (native) {
        for (const f of timing.forwards.splice(0)) jsForwardMs.push(f.ms);
        timings = engineTimings(await native.forwardStats(), jsForwardMs, native.cudaGraphs);
        if (cLoopBlocks > 0) {
          const k = Math.min(10, Math.floor(blocks / 2));
          const late = { forwardsMs: forwardMs.slice(-k), engineMs: engine.slice(-k), blockMs: total.slice(-k) };
          const rows = native.info().cacheRows;
          nodeVsC = compareNodeWithC(late, await runCLoop(native, config, cLoopBlocks), rows);
        }
        // the C loop keeps the cache's row count: profiled at the late blocks' size, after --c-loop or without it
        if (phaseBlocks > 0) phases = await runPhases(native, config, phaseBlocks);
        if (cLoopBlocks > 0 || phaseBlocks > 0) await native.resetCache();
      }
      // the first engine still open: the second shares its weights (and, native, its cuDNN plans)
      if (secondBlocks > 0) secondStream = await runSecondStream(config, secondBlocks);
    } catch (e) {
      await meter?.abort();
      throw e;
    } finally {
      await generator.close();
      await timing.close();
    }
    const streamEnd = meter ? performance.now() : handedOutAt[handedOutAt.length - 1];
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
    const split = phaseSplit(handedOutAt, calls, config.decoder.kind === 'none' ? [] : decode, encoded?.blockMs ?? []);
    const pipelineVideoFps = videoFramesPerBlock > 0 ? (videoFramesPerBlock * 1000) / split.periodMs : null;
    if (encoded) {
      encode = {
        available: true,
        frames: encoded.frames,
        msPerBlock: split.encodeMs,
        encoderFps: encoded.encoderFps,
        capacityFps,
        keepsUp: pipelineVideoFps === null || capacityFps >= pipelineVideoFps,
        drainMs: encoded.drainMs,
        preset: config.output.preset,
        bytes: encoded.bytes,
      };
    }
    const ttffMs = handedOutAt[0] - streamStart;
    const pipeline: BenchPipeline = {
      ttffMs,
      firstBlockVideoFrames,
      msPerBlock: split.periodMs,
      videoFps: pipelineVideoFps,
      endToEndVideoFps: totalVideoFrames > 0 ? (totalVideoFrames * 1000) / (streamEnd - streamStart) : null,
      decodeMsPerBlock: split.decodeMs,
      encodeMsPerBlock: split.encodeMs,
      encode,
      split,
      targets: {
        ...PIPELINE_TARGETS,
        videoFpsMet: pipelineVideoFps === null ? null : pipelineVideoFps >= PIPELINE_TARGETS.videoFps,
        ttffMet: ttffMs <= PIPELINE_TARGETS.ttffMs,
      },
    };
    const startup: BenchStartup = {
      engineMs: engineStartMs,
      decoderOpenMs: generator.startup.decoderOpenMs,
      warmupMs: generator.startup.warmupMs,
      warmupForwards: generator.startup.warmup?.forwards ?? 0,
      generatorMs,
    };
    const report: BenchReport = {
      config: options.config ?? 'configs/default.yaml',
      ...ran,
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
      firstVsSteady: total[0] / msPerBlock - 1,
      rssMbEarly: median(memEarly.map((m) => m.rss)),
      rssMbMid: median(memory.slice(Math.floor(blocks / 2) - Math.floor(k / 2), Math.floor(blocks / 2) + Math.ceil(k / 2)).map((m) => m.rss)),
      rssMbLate: median(memLate.map((m) => m.rss)),
      heapMbEarly: median(memEarly.map((m) => m.heap)),
      heapMbLate: median(memLate.map((m) => m.heap)),
      cacheRowsLate: cacheRows,
      gflopPerBlock: median(flops.slice(1)) / 1e9,
      forwardGflops: flops.slice(1).reduce((a, b) => a + b, 0) / forwardMs.slice(1).reduce((a, b) => a + b, 0) / 1e6,
      startup,
      pipeline,
      engineTimings: timings,
      nodeVsC,
      secondStream,
      phases,
    };
    if (options.peak) {
      const { measureMatmulPeak } = await import('../../engine/ort/matmul-peak.js');
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
        `config            ${report.config} (cache ${report.cache})`,
        `engine            ${report.engine}`,
        `decoder           ${report.decoder}${report.decoderRuntime ? ` on ${describeDecoderBackend(report.decoderRuntime)}` : ''}`,
        `blocks            ${blocks} x ${report.latentFramesPerBlock} latent frames` +
          (videoFramesPerBlock > 0 ? ` -> ${videoFramesPerBlock} video frames (first block ${firstBlockVideoFrames}, decoder ${report.decoder})` : ' (no decoder)'),
        `ms per block      ${msPerBlock.toFixed(2)} (engine ${engineMsPerBlock.toFixed(2)}, decode ${report.decodeMsPerBlock.toFixed(2)})`,
        `overhead          ${pct(report.overhead)} of the block`,
        `early vs late     ${report.earlyMsPerBlock.toFixed(2)} ms (blocks 1-${k}) vs ${report.lateMsPerBlock.toFixed(2)} ms (last ${k}): ${report.lateVsEarly >= 0 ? '+' : ''}${pct(report.lateVsEarly)}`,
        `generation fps    ${report.videoFps === null ? '-' : report.videoFps.toFixed(1)} video frames/s, ${report.latentFps.toFixed(1)} latent frames/s`,
        `first block       ${report.firstBlockMs.toFixed(1)} ms (${report.firstVsSteady >= 0 ? '+' : ''}${pct(report.firstVsSteady)} vs a steady block)`,
        `startup           engine ${startup.engineMs.toFixed(0)} ms, decoder ${startup.decoderOpenMs.toFixed(0)} ms, warm-up ${startup.warmupMs.toFixed(0)} ms (${startup.warmupForwards} forwards)`,
        `pipeline          first frame ${ttffMs.toFixed(1)} ms after the stream's start; period ${split.periodMs.toFixed(2)} ms` +
          (pipelineVideoFps === null ? '' : ` = ${pipelineVideoFps.toFixed(1)} video frames/s (${pipeline.endToEndVideoFps!.toFixed(1)} end to end)`),
        `  split           forwards ${split.forwardsMs.toFixed(2)}, cache ${split.cacheMs.toFixed(2)}, host ${split.hostMs.toFixed(2)} ms; ` +
          `decode ${split.decodeMs === null ? '-' : `${split.decodeMs.toFixed(2)} ms`}, encode ${split.encodeMs === null ? '-' : `${split.encodeMs.toFixed(2)} ms`} (overlapped)`,
        `  encoder         ${encode.available ? `${encode.capacityFps.toFixed(1)} frames/s alone, ${encode.encoderFps.toFixed(1)} in the stream (${encode.keepsUp ? 'keeps up' : 'falls behind'}, drain ${encode.drainMs.toFixed(0)} ms, x264 ${encode.preset})` : `not measured: ${encode.reason}`}`,
        `memory (rss)      ${report.rssMbEarly.toFixed(0)} MB early, ${report.rssMbMid.toFixed(0)} MB mid-run, ${report.rssMbLate.toFixed(0)} MB late (heap ${report.heapMbEarly.toFixed(0)} -> ${report.heapMbLate.toFixed(0)} MB)`,
        `cache rows        ${report.cacheRowsLate} per layer at the end`,
        ...(timings
          ? [
              `native forwards   ${timings.jsMsPerForward.toFixed(2)} ms in JavaScript = ${timings.wallMsPerForward.toFixed(2)} in the addon (GPU ${timings.gpuMsPerForward.toFixed(2)}, issue ${timings.issueMsPerForward.toFixed(2)}) + ${timings.hopMsPerForward.toFixed(2)} hop; idle before ${timings.idleMsPerForward.toFixed(2)} ms; CUDA graphs ${timings.cudaGraphs ? `on (${timings.graphLaunches} launches, ${timings.graphCaptures} captured${timings.graphFallback ? ', fell back to direct launches' : ''})` : 'off'}`,
            ]
          : []),
        ...(nodeVsC
          ? [
              `node vs C         forwards ${nodeVsC.nodeForwardsMs.toFixed(1)} vs ${nodeVsC.cForwardsMs.toFixed(1)} ms (${nodeVsC.forwardsRatio.toFixed(3)}x), engine ${nodeVsC.nodeEngineMs.toFixed(1)} vs ${(nodeVsC.cForwardsMs + nodeVsC.cUpdateMs).toFixed(1)} ms (${nodeVsC.engineRatio.toFixed(3)}x), block ${nodeVsC.nodeBlockMs.toFixed(1)} vs ${nodeVsC.cBlockMs.toFixed(1)} ms (${nodeVsC.blockRatio.toFixed(3)}x) at ${nodeVsC.cacheRows} cache rows`,
            ]
          : []),
        ...(phases
          ? [
              `phases (device)   ${PROFILE_PHASES.map((name) => `${name} ${phases!.msPerBlock[name].toFixed(1)}`).join(', ')} ms a block (sum ${phases.forwardsMsPerBlock.toFixed(1)}; update ${phases.updateMs.toFixed(1)}, block ${phases.blockMs.toFixed(1)} profiled, ${phases.blocks} C-loop blocks at ${phases.cacheRows} cache rows)`,
            ]
          : []),
        ...(secondStream
          ? [
              `second stream     first block ${secondStream.firstBlockMs.toFixed(1)} ms vs steady ${secondStream.steadyMsPerBlock.toFixed(1)} ms (${secondStream.firstVsSteady >= 0 ? '+' : ''}${pct(secondStream.firstVsSteady)}); engine ${secondStream.engineMs.toFixed(0)} ms, warm-up ${secondStream.warmupMs.toFixed(0)} ms` +
                (secondStream.attentionPlansBuilt === null ? '' : `, cuDNN plans built ${secondStream.attentionPlansBuilt}, reused ${secondStream.attentionPlansReused}`),
            ]
          : []),
        `compute           ${report.gflopPerBlock.toFixed(2)} GFLOP per block, ${report.forwardGflops.toFixed(1)} GFLOP/s in the forwards` +
          (report.peakMatmulGflops ? ` (${pct(report.ofPeak!)} of a ${report.peakMatmulGflops.toFixed(1)} GFLOP/s MatMul here)` : ''),
      ].join('\n') + '\n',
    );
  });
}
