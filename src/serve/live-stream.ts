/**
 * One live stream: the generator's blocks go to the encoder (and the recording), the encoder's
 * fragments go to the viewer hub. The loop waits for nothing but the generator, ffmpeg's stdin
 * backpressure and the clock: a scheduled stream (`admit` given: the server's block scheduler)
 * runs each block when the scheduler's plan gives it the device, at the steps its quality ladder
 * chose; an unscheduled one, with `serve.pace`, is held to the playout clock (at most
 * `serve.maxLeadSeconds` ahead). Viewers never hold it up: the hub only queues.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { patchConfig } from '../config/load.js';
import type { HeldFrame } from '../cache/types.js';
import type { FrameBlock } from '../loop/types.js';
import { SinkstreamError } from '../errors.js';
import { openMp4File, type Mp4FileWriter } from '../encode/mp4-file-writer.js';
import { encoderOptionsFor } from '../encode/encoder-settings.js';
import { EncoderSupervisor, type StartEncoder, type WatchdogOptions } from './encoder-supervisor.js';
import { ViewerHub } from './viewer-hub.js';
import { StreamStats } from './stream-stats.js';
import { PlayoutLedger } from './playout-ledger.js';
import type { ServerMetrics } from './metrics.js';
import { silentLogger, type Logger } from './logger.js';
import type { CachePatch, StreamFigures, StreamInfo } from './protocol.js';
import { realTimers, type ScheduledStream, type Timers } from '../realtime/runtime-scheduler.js';
import { IdleStop } from './idle-stop.js';
import { objectiveFps } from '../../scheduler/index.js';
import { runScheduledBlock } from '../realtime/scheduled-block.js';
import { schedulerFigures } from './serve-scheduling.js';

/** What the server needs of the generator (src/loop/generator.ts). */
export interface LiveGenerator {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /** Video frames per block (default: generation.blockFrames, one video frame per latent frame). */
  readonly framesPerBlock?: number;
  /** Video frames of block `index` (default: framesPerBlock for every block; a streaming decoder's first block gives fewer). */
  framesOfBlock?(index: number): number;
  [Symbol.asyncIterator](): AsyncIterator<FrameBlock>;
  /** The next block at `steps` denoising steps (the scheduler's ladder); required for scheduled streams. */
  next?(options?: { steps?: number }): Promise<FrameBlock>;
  setPrompt(prompt: string): Promise<void>;
  /** Takes the stream's whole cache section, already validated against the stream's config, from the next block. */
  retune(cache: Config['cache']): void;
  cacheView(): HeldFrame[];
  close(): Promise<void>;
}

export type CreateGenerator = (config: Config) => Promise<LiveGenerator>;

export interface LiveStreamOptions {
  id: string;
  config: Config;
  createdAt: number;
  record: boolean;
  createGenerator: CreateGenerator;
  metrics: ServerMetrics;
  startEncoder?: StartEncoder;
  /** The encoder watchdog's settings, over the defaults (tests shorten them or drive them by hand). */
  encoderWatchdog?: Partial<WatchdogOptions>;
  /** Stream events are logged here, each line with `stream: <id>` (default: nowhere). */
  logger?: Logger;
  now?: () => number;
  /** Timers for the idle rule (serve.idleStopSeconds); default: the real ones. Read with `now`. */
  timers?: Timers;
  /**
   * The block scheduler: called once the generator exists, admits the stream or throws
   * (ERR_CAPACITY with the scheduler's reason). Absent: the stream runs unscheduled.
   */
  admit?: (generator: LiveGenerator, config: Config) => ScheduledStream;
}

export interface BlockReport {
  index: number;
  frames: number;
  /** The generator's wall time for the block, ms. */
  totalMs: number;
  /** When the block came out of the generator (performance.now() clock unless `now` was given). */
  readyAt: number;
}

export interface LiveStreamEvents {
  /** A block came out of the generator. */
  block: [report: BlockReport];
  /** The stream is over (stopped, or failed); `reason` says which. */
  ended: [reason: string];
}

/**
 * A scheduled stream plays out at its objective (scheduler.targetFps, by default generation.fps): that is the rate the scheduler
 * releases its blocks at and holds its deadlines to, so the video is encoded at it too.
 */
function playoutFps(config: Config, generator: LiveGenerator, scheduled: ScheduledStream | null): number {
  return scheduled ? objectiveFps(config) : generator.fps;
}

/** How long stop() waits for an in-flight block before giving up on it. */
const STOP_GRACE_MS = 15_000;

/**
 * The encoder watchdog declares ffmpeg frozen after this many block periods with frames waiting
 * and nothing written out, and never sooner than ENCODER_STALL_MIN_MS (ffmpeg's own start-up on a
 * busy machine must not look like a freeze).
 */
const ENCODER_STALL_BLOCKS = 4;
const ENCODER_STALL_MIN_MS = 2000;

export function encoderStallMs(fps: number, framesPerBlock: number): number {
  return Math.max(ENCODER_STALL_MIN_MS, (ENCODER_STALL_BLOCKS * framesPerBlock * 1000) / fps);
}

export class LiveStream extends EventEmitter<LiveStreamEvents> {
  readonly id: string;
  readonly hub: ViewerHub;
  readonly stats: StreamStats;
  /** What viewers were given and when: the stream's TTFF, latency and misses. */
  readonly ledger: PlayoutLedger;
  state: StreamInfo['state'] = 'starting';
  prompt: string;
  /** The rate frames play out at: the scheduler's objective for a scheduled stream, else generation.fps. */
  readonly fps: number;
  private config: Config;
  private readonly abort = new AbortController();
  private readonly encoder: EncoderSupervisor;
  private recorder: Mp4FileWriter | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private readonly now: () => number;
  private readonly log: Logger;
  private endReason = 'stopped';
  private readonly idle: IdleStop;

  private constructor(
    private readonly opts: LiveStreamOptions,
    private readonly generator: LiveGenerator,
    private readonly scheduled: ScheduledStream | null,
  ) {
    super();
    this.setMaxListeners(0); // one 'ended' listener per watching connection, bounded by serve.maxViewers
    this.id = opts.id;
    this.config = opts.config;
    this.prompt = opts.config.generation.prompt;
    this.now = opts.now ?? (() => performance.now());
    this.log = (opts.logger ?? silentLogger()).child({ stream: opts.id });
    const serve = opts.config.serve;
    this.fps = playoutFps(opts.config, generator, scheduled);
    this.stats = new StreamStats(opts.createdAt, this.fps, this.cacheCapacity());
    this.ledger = new PlayoutLedger(opts.createdAt, this.fps, opts.metrics.playoutObserver());
    const idleSeconds = serve.idleStopSeconds;
    this.idle = new IdleStop(idleSeconds * 1000, this.now, opts.timers ?? realTimers, () => {
      this.log.info({ event: 'stream-idle-stopped', idleSeconds }, `stream ${opts.id}: stopping, nobody watched it for ${idleSeconds} s (serve.idleStopSeconds)`);
      void this.stop(`idle: no viewer for ${idleSeconds} s`);
    });
    this.hub = new ViewerHub(
      opts.id,
      { highWaterBytes: serve.viewerHighWaterBytes, hardCapBytes: serve.viewerHardCapBytes, stalledMs: serve.stalledViewerSeconds * 1000 },
      { width: generator.width, height: generator.height },
      {
        skipped: (n) => opts.metrics.viewerSkipped(n),
        dropped: () => opts.metrics.viewerDropped(),
        viewers: (n) => this.idle.update(n, this.recorder !== null),
      },
      this.now,
    );
    this.encoder = new EncoderSupervisor(
      encoderOptionsFor(opts.config, generator, this.fps),
      serve.encoderRestarts,
      `stream ${opts.id}`,
      opts.startEncoder,
      { stallMs: encoderStallMs(this.fps, generator.framesPerBlock ?? opts.config.generation.blockFrames), now: this.now, ...opts.encoderWatchdog },
    );
    this.encoder.on('init', (init, reason) => this.hub.setInit(init, reason));
    this.encoder.on('fragment', (fragment, frame) => {
      this.ledger.frameDelivered(frame, this.now());
      this.hub.broadcast(fragment);
    });
    this.encoder.on('restarted', (cause, n, kind) => {
      opts.metrics.encoderRestarted();
      const message = cause.message.split('\n')[0];
      this.log.warn({ event: 'encoder-restarted', cause: kind, restarts: n, detail: message }, `stream ${opts.id}: encoder restarted (${n}) after: ${message}`);
      this.hub.sendJson({ type: 'encoder-restarted', stream: opts.id, cause: kind, restarts: n, message });
    });
  }

  /**
   * Creates the generator (rejecting on a bad config, model or prompt before anything runs), the
   * encoder and the recording, then starts generating in the background.
   */
  static async start(opts: LiveStreamOptions): Promise<LiveStream> {
    const generator = await opts.createGenerator(opts.config);
    if (!(generator.width > 0 && generator.height > 0)) {
      await generator.close();
      throw new SinkstreamError('ERR_CONFIG_INVALID', `decoder.kind: '${opts.config.decoder.kind}' yields no frames; a live stream needs a decoder`);
    }
    let scheduled: ScheduledStream | null = null;
    try {
      scheduled = opts.admit?.(generator, opts.config) ?? null;
    } catch (e) {
      await generator.close().catch(() => undefined);
      throw e;
    }
    const stream = new LiveStream(opts, generator, scheduled);
    try {
      stream.encoder.start();
      if (opts.record) {
        const dir = path.resolve(opts.config.serve.recordDir);
        mkdirSync(dir, { recursive: true });
        stream.recorder = await openMp4File(path.join(dir, `${opts.id}.mp4`), encoderOptionsFor(opts.config, generator, stream.fps));
      }
    } catch (e) {
      scheduled?.leave('failed to start');
      await stream.encoder.kill();
      await generator.close().catch(() => undefined);
      throw e;
    }
    stream.state = 'running';
    stream.idle.update(stream.hub.size, stream.recorder !== null);
    stream.loopDone = stream.run();
    stream.statsTimer = setInterval(() => stream.hub.sendJson({ type: 'stats', figures: stream.figures() }), opts.config.serve.statsIntervalMs);
    stream.statsTimer.unref();
    return stream;
  }

  get encoderPid(): number | undefined {
    return this.encoder.pid;
  }

  /** Switches the prompt from the next block (the generator re-caches: LongLive). */
  async setPrompt(prompt: string): Promise<void> {
    this.assertRunning();
    await this.generator.setPrompt(prompt);
    this.prompt = prompt;
    this.log.info({ event: 'prompt-switched', prompt }, `stream ${this.id}: prompt switched`);
  }

  /**
   * Changes the cache settings from the next block: the patch is laid over the stream's config and
   * the whole config validated here (ERR_CONFIG_INVALID on an impossible combination, nothing
   * changed), and the generator gets the complete cache section. The stream owns its configuration.
   */
  retune(patch: CachePatch): void {
    this.assertRunning();
    const next = patchConfig(this.config, [{ cache: patch }], 'cache retune');
    this.generator.retune(next.cache);
    this.config = next;
    this.stats.setCacheCapacity(this.cacheCapacity());
  }

  info(): StreamInfo {
    return {
      id: this.id,
      prompt: this.prompt,
      state: this.state,
      width: this.generator.width,
      height: this.generator.height,
      fps: this.fps,
      viewers: this.hub.size,
      recording: this.recorder ? path.basename(this.recorder.path) : null, // never the server's folders
      records: this.recorder !== null,
      idleStop: this.idleStopInfo(),
      cache: { policy: this.config.cache.policy, sink: this.config.cache.sink, window: this.config.cache.window },
      createdAt: new Date(Date.now() - (this.now() - this.opts.createdAt)).toISOString(),
    };
  }

  private idleStopInfo(): StreamInfo['idleStop'] {
    const idle = this.idle.state();
    if (!idle.pending) return idle;
    const left = Math.max(0, idle.at - this.now());
    return { pending: true, at: new Date(Date.now() + left).toISOString(), inSeconds: Math.round(left) / 1000 };
  }

  figures(): StreamFigures {
    const playout = this.ledger.figures(this.now());
    return {
      stream: this.id,
      ...this.stats.snapshot(),
      ttffMs: playout.ttffMs,
      framesDelivered: playout.framesDelivered,
      fps: playout.deliveredFps,
      latencyMs: playout.latencyMs,
      jitterMs: playout.jitterMs,
      deadlineMisses: playout.deadlineMisses,
      missRate: playout.missRate,
      viewers: this.hub.size,
      skippedFragments: this.hub.skippedFragments,
      droppedViewers: this.hub.droppedViewers,
      encoderRestarts: this.encoder.restarts,
      ...(this.scheduled ? { scheduler: schedulerFigures(this.scheduled, this.config) } : {}),
    };
  }

  /**
   * Stops generating, lets ffmpeg flush its last fragments to viewers, finalizes the recording, and
   * tells viewers the stream ended. Idempotent.
   */
  stop(reason = 'stopped'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    this.endReason = reason;
    this.idle.dispose();
    if (this.state === 'running' || this.state === 'starting') this.state = 'stopping';
    this.abort.abort();
    this.wake?.();
    this.scheduled?.leave(reason); // frees the device now; a block in flight is not waited for by others
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loopDone, new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(timer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    await this.generator.close().catch((e: Error) => this.log.warn({ event: 'generator-close-failed', detail: e.message }, `stream ${this.id}: generator close: ${e.message}`));
    await this.encoder.close();
    this.ledger.end(this.now());
    if (this.recorder) {
      await this.recorder.close().then(
        (r) => this.log.info({ event: 'recording-finalised', file: r.path, frames: r.framesInFile }, `stream ${this.id}: recorded ${r.framesInFile} frames to ${r.path}`),
        (e: Error) => this.log.error({ event: 'recording-failed', file: this.recorder?.path, detail: e.message }, `stream ${this.id}: recording ${this.recorder?.path}: ${e.message}`),
      );
    }
    this.hub.sendJson({ type: 'stats', figures: this.figures() });
    this.hub.endAll({ type: 'ended', stream: this.id, reason: this.endReason });
    if (this.state !== 'failed') this.state = 'ended';
    const f = this.ledger.figures(this.now());
    this.log.info(
      { event: 'stream-ended', reason: this.endReason, state: this.state, framesDelivered: f.framesDelivered, ttffMs: f.ttffMs, deadlineMisses: f.deadlineMisses },
      `stream ${this.id} ended: ${this.endReason}`,
    );
    this.emit('ended', this.endReason);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    try {
      const blocks = this.scheduled ? null : this.generator[Symbol.asyncIterator]();
      while (!signal.aborted) {
        let block: FrameBlock;
        let readyAt: number;
        if (this.scheduled) {
          const ran = await runScheduledBlock(this.scheduled, this.scheduledGenerator());
          if (!ran) {
            if (this.scheduled.stopReason !== null && !signal.aborted) void this.stop(`stopped by the scheduler: ${this.scheduled.stopReason}`);
            break;
          }
          if (signal.aborted) break;
          block = ran.block;
          readyAt = this.now();
        } else {
          const next = await blocks!.next();
          if (next.done || signal.aborted) break;
          block = next.value;
          readyAt = this.now();
        }
        this.stats.recordBlock({ readyAt, frames: block.frames.length, totalMs: block.timings.totalMs, cache: block.cache });
        this.opts.metrics.observeBlock({ frames: block.frames.length, totalMs: block.timings.totalMs, steps: block.steps });
        this.emit('block', { index: block.index, frames: block.frames.length, totalMs: block.timings.totalMs, readyAt });
        for (const frame of block.frames) {
          await this.encoder.writeFrame(frame);
          if (this.recorder) await this.record(frame);
        }
        // A scheduled stream is paced by the scheduler: a block is released at its place on the timeline.
        if (this.config.serve.pace && !this.scheduled) await this.holdToPlayoutClock();
      }
      if (!signal.aborted) void this.stop('generator finished');
    } catch (e) {
      if (signal.aborted) return;
      const error = e as Error;
      this.log.error({ event: 'stream-failed', detail: error.message }, `stream ${this.id}: failed: ${error.message}`);
      this.state = 'failed';
      void this.stop(`failed: ${error instanceof SinkstreamError ? `${error.message} [${error.code}]` : error.message}`);
    }
  }

  private async record(frame: Uint8Array): Promise<void> {
    try {
      await this.recorder!.writeFrame(frame);
    } catch (e) {
      // A dead recording must not end the live stream: keep what was written, go on without it.
      const detail = (e as Error).message.split('\n')[0];
      this.log.error({ event: 'recording-stopped', detail }, `stream ${this.id}: recording stopped: ${detail}`);
      const dead = this.recorder!;
      this.recorder = null;
      void dead.abort();
      this.idle.update(this.hub.size, false);
    }
  }

  /** Sleeps while the next frame is due more than maxLeadSeconds from now. */
  private async holdToPlayoutClock(): Promise<void> {
    const due = this.stats.nextDueAt;
    if (due === null) return;
    const wait = due - this.config.serve.maxLeadSeconds * 1000 - this.now();
    if (wait <= 0 || this.abort.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
    this.wake = null;
  }

  private scheduledGenerator(): { next(options?: { steps?: number }): Promise<FrameBlock> } {
    const g = this.generator;
    if (!g.next) throw new SinkstreamError('ERR_ENGINE', `stream ${this.id}: its generator cannot run a block at a chosen step count (no next())`);
    return { next: (options) => g.next!(options) };
  }

  private cacheCapacity(): number {
    return Math.max(1, this.config.cache.window - this.config.generation.blockFrames);
  }

  private assertRunning(): void {
    if (this.state !== 'running') throw new SinkstreamError('ERR_CLOSED', `stream ${this.id} is ${this.state}`);
  }
}
