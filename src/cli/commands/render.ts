/**
 * `sinkstream render`: generates a clip block by block and writes it to a fragmented MP4. Offline (the
 * default) every block runs at the configured steps, as fast as it can; `--realtime` holds the render
 * to the live objective through the block scheduler (src/realtime/): it is admitted or refused with
 * the reason, and the quality ladder may lower steps to keep each block's deadline.
 */
import { Option, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import path from 'node:path';
import { addConfigOptions, configFromOptions, type ConfigOptionValues, type OptionSetting } from '../config-options.js';
import { SinkstreamError } from '../../errors.js';
import { createGenerator } from '../../loop/generator.js';
import { checkOutputFile, type Mp4FileWriter } from '../../encode/mp4-file-writer.js';
import { clipFrames, openClipFile, writeClipFrames } from '../../encode/clip-writer.js';
import { describeCache } from '../describe.js';
import { ranOn } from '../ran-on.js';
import { describeSteps, offlineBlocks, type BlockSource } from '../../realtime/block-source.js';
import { admitRealtime, calibrateForRealtime, type RealtimeRun } from '../../realtime/realtime-render.js';
import { describeCalibration } from '../../realtime/engine-calibration.js';
import { stepLadderFor } from '../../realtime/stream-spec.js';
import { objectiveFps } from '../../../scheduler/index.js';
import { blockFigures, formatRenderSummary, type RenderSummary } from '../render-summary.js';
import { PlayoutLedger, type PlayoutFigures } from '../../serve/playout-ledger.js';

interface RenderOptions extends ConfigOptionValues {
  prompt?: string;
  seconds?: string;
  frames?: string;
  out?: string;
  seed?: string;
  progress: boolean;
  realtime?: boolean;
  verbose?: boolean;
  json?: boolean;
}

function positiveNumber(flag: string, raw: string, integer: boolean): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new SinkstreamError('ERR_ARGUMENT', `${flag} ${raw}: expected a positive ${integer ? 'integer' : 'number'}`);
  }
  return n;
}

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('render')
      .description('render a clip to an MP4 file (fragmented: playable even if interrupted)')
      .option('-p, --prompt <text>', 'prompt (default: generation.prompt)')
      .addOption(new Option('--seconds <n>', 'length in seconds of video').conflicts('frames'))
      .addOption(new Option('--frames <n>', 'length in frames').conflicts('seconds'))
      .option('-o, --out <file>', 'output file (default: output.path, out.mp4)')
      .option('--seed <n>', 'noise seed (default: generation.seed)')
      .option('--realtime', 'hold the render to the live objective (scheduler.targetFps, ttffMs, latencyMs): admitted or refused by the block scheduler, which may lower steps to keep deadlines')
      .option('--verbose', "with --realtime: print the engine's calibration and the scheduler's decisions on stderr")
      .option('--no-progress', 'no progress bar')
      .option('--json', 'print the summary as one JSON object on stdout (no progress bar)'),
  ).action(async (options: RenderOptions) => {
    const extra: OptionSetting[] = [];
    if (options.prompt !== undefined) extra.push({ assignment: `generation.prompt=${JSON.stringify(options.prompt)}`, origin: '--prompt' });
    if (options.seed !== undefined) {
      if (!/^\d+$/.test(options.seed)) throw new SinkstreamError('ERR_ARGUMENT', `--seed ${options.seed}: expected a non-negative integer`);
      extra.push({ assignment: `generation.seed=${options.seed}`, origin: '--seed' });
    }
    if (options.out !== undefined) extra.push({ assignment: `output.path=${JSON.stringify(options.out)}`, origin: '--out' });
    const config = configFromOptions(options, extra);
    if (config.decoder.kind === 'none') {
      throw new SinkstreamError('ERR_CONFIG_INVALID', "decoder.kind: 'none' produces no frames; render needs a decoder (space-to-depth, taehv, wan-vae or onnx)");
    }
    const fps = config.generation.fps;
    const totalFrames = clipFrames(config, {
      ...(options.frames !== undefined ? { frames: positiveNumber('--frames', options.frames, true) } : {}),
      ...(options.seconds !== undefined ? { seconds: positiveNumber('--seconds', options.seconds, false) } : {}),
    });
    const outPath = path.resolve(config.output.path);

    // Everything that can reject the input (config, output path, weights, prompt, the scheduler's
    // admission) happens before the file exists, and before anything is started that would need
    // stopping.
    checkOutputFile(outPath, options.out !== undefined ? '--out' : 'output.path');
    const note = (line: string) => options.verbose && process.stderr.write(`sinkstream render: ${line}\n`);
    const calibration = options.realtime ? await calibrateForRealtime(config) : null;
    if (calibration) note(describeCalibration(calibration, config, stepLadderFor(config)));
    const generator = await createGenerator(config);
    // What runs, asked of the engine and the decoder themselves (the config's keys can name something else).
    const ran = ranOn(generator.engineInfo(), generator.decoderBackend());
    let realtime: RealtimeRun | null = null;
    // A real-time render's TTFF, latency and misses: the playout ledger a live stream's viewers are
    // measured by (docs/serving.md, Figures), each frame delivered when it is written.
    let playout: PlayoutLedger | null = null;
    let figures: PlayoutFigures | null = null;
    let writer: Mp4FileWriter | undefined;
    let bar: SingleBar | undefined;
    let written = 0;
    let interrupted = false;
    const blockMs: number[] = [];
    const decodeMs: number[] = [];
    let interruptedBy: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      interrupted = true;
      interruptedBy ??= signal;
    };
    const started = performance.now();
    let failure: { error: unknown } | undefined;
    let source: BlockSource | undefined;
    try {
      if (calibration) {
        realtime = admitRealtime(config, generator, totalFrames, { calibration, onDecision: (d) => note(`scheduler: ${d.kind}: ${d.message}`) });
        playout = new PlayoutLedger(performance.now(), objectiveFps(config));
      }
      source = realtime ? realtime.source : offlineBlocks(generator);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      writer = await openClipFile(outPath, config, generator);
      if (options.progress && !options.json && process.stderr.isTTY) {
        bar = new SingleBar({ format: 'rendering {bar} {value}/{total} frames | {speed} fps | ETA {eta_formatted}', hideCursor: true, stream: process.stderr });
        bar.start(totalFrames, 0, { speed: '0.0' });
      }
      written = await writeClipFrames(writer, source, totalFrames, {
        stop: () => interrupted,
        onFrame: (frames) => playout?.frameDelivered(frames - 1, performance.now()),
        onBlock: (block, frames) => {
          blockMs.push(block.timings.totalMs);
          decodeMs.push(block.timings.decodeMs);
          bar?.update(frames, { speed: (frames / ((performance.now() - started) / 1000)).toFixed(1) });
        },
      });
      // The stream ends with its last frame: what the encoder's close takes afterwards is no playout slot.
      if (playout) {
        const ended = performance.now();
        playout.end(ended);
        figures = playout.figures(ended);
      }
    } catch (e) {
      failure = { error: e };
    }
    // Every path out releases everything: the signal handlers, the scheduler, ffmpeg (which
    // finishes the file: what was written stays playable) and the generator.
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    realtime?.stream.leave(failure ? 'failed' : interrupted ? 'interrupted' : 'finished');
    realtime?.runtime.close();
    const [closed, generatorClosed] = await Promise.allSettled([writer?.close(), generator.close()]);
    if (failure) throw failure.error;
    if (closed.status === 'rejected') throw closed.reason;
    if (generatorClosed.status === 'rejected') throw generatorClosed.reason;
    // What the file holds: when Ctrl-C reached ffmpeg too, the frames still in its input are not in it.
    const inFile = closed.value?.framesInFile ?? written;
    const seconds = (performance.now() - started) / 1000;
    const stopped = realtime?.stream.stopReason;
    if (interrupted) process.exitCode = 130;
    if (options.json) {
      const summary: RenderSummary = {
        status: interrupted ? 'interrupted' : stopped ? 'stopped' : 'finished',
        reason: interrupted ? `interrupted by ${interruptedBy ?? 'a signal'}` : (stopped ?? null),
        exitCode: interrupted ? 130 : 0,
        output: outPath,
        framesRequested: totalFrames,
        framesGenerated: written,
        framesWritten: inFile,
        fps,
        videoSeconds: inFile / fps,
        width: generator.width,
        height: generator.height,
        seconds,
        generatedFps: written / seconds,
        blocks: blockMs.length,
        blocksBySteps: { ...source!.blocksBySteps },
        ...blockFigures({ blockMs, decodeMs }),
        ...ran,
        decoder: config.decoder.kind,
        cache: describeCache(config.cache),
        realtime: figures
          ? {
              targetFps: objectiveFps(config),
              ttffMs: figures.ttffMs,
              latencyP50Ms: figures.latencyMs.p50,
              latencyP99Ms: figures.latencyMs.p99,
              jitterP99Ms: figures.jitterMs.p99,
              missedDeadlines: figures.deadlineMisses,
              framesDelivered: figures.framesDelivered,
            }
          : null,
      };
      process.stdout.write(formatRenderSummary(summary));
      if (stopped) process.stderr.write(`sinkstream render: stopped by the scheduler: ${stopped}\n`);
      return;
    }
    const verb = interrupted ? 'interrupted after' : 'rendered';
    process.stdout.write(
      `${verb} ${inFile} frames (${(inFile / fps).toFixed(2)} s at ${fps} fps, ${generator.width}x${generator.height}) to ${outPath} ` +
        `in ${seconds.toFixed(1)} s: ${(written / seconds).toFixed(1)} fps generated; cache ${describeCache(config.cache)}; ` +
        `steps ${describeSteps(source!.blocksBySteps)}${figures ? `; ${describeRealtime(figures, objectiveFps(config), written)}` : ''}\n`,
    );
    if (stopped) process.stderr.write(`sinkstream render: stopped by the scheduler: ${stopped}\n`);
  });
}

/** "realtime at 4 fps: TTFF 1690 ms, latency p50 1690 / p99 1690 ms, 0 of 96 frames missed (jitter p99 0 ms)". */
function describeRealtime(m: PlayoutFigures, targetFps: number, written: number): string {
  const ms = (v: number) => v.toFixed(0);
  return (
    `realtime at ${targetFps} fps: TTFF ${m.ttffMs === null ? '-' : ms(m.ttffMs)} ms, latency p50 ${ms(m.latencyMs.p50)} / p99 ${ms(m.latencyMs.p99)} ms, ` +
    `${m.deadlineMisses} of ${Math.max(written, m.framesDelivered)} frames missed (jitter p99 ${ms(m.jitterMs.p99)} ms)`
  );
}
