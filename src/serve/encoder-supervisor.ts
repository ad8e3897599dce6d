/**
 * Keeps a live stream's encoder alive: one ffmpeg (src/encode/fmp4-stream.ts) at a time, its output
 * cut into init segment and fragments. If ffmpeg dies (or writes garbage), or stops writing while
 * frames wait in it (the watchdog: frozen, e.g. SIGSTOP), a new one is started, its new init segment
 * is announced, and the frame being written is handed to the new one; after `maxRestarts` restarts
 * the stream fails. Closing (asked for) and dying (failed) are told apart.
 *
 * Each fragment is tagged with the stream's frame it holds: ffmpeg writes one fragment per frame, in
 * order, so the k-th fragment of an encoder holds the k-th frame written to it. Frames an encoder
 * took and never wrote out (it died holding them) are lost, and the numbering skips them.
 */
import { EventEmitter } from 'node:events';
import { SinkstreamError } from '../errors.js';
import type { EncoderOptions } from '../encode/encoder-settings.js';
import { startFragmentedStream, type FragmentedStream } from '../encode/fmp4-stream.js';
import { Fmp4Splitter, type InitSegment, type MediaFragment } from './fmp4-splitter.js';

export type RestartCause = 'died' | 'stalled';

export interface EncoderSupervisorEvents {
  init: [init: InitSegment, reason: 'start' | 'encoder-restart'];
  /** A fragment, with the stream's frame index it holds (0-based, counting every frame written). */
  fragment: [fragment: MediaFragment, frame: number];
  /** ffmpeg died (or stalled) and a new one was started. */
  restarted: [cause: Error, restarts: number, kind: RestartCause];
  /** ffmpeg died once too often; writes now reject. */
  failed: [error: SinkstreamError];
}

export type StartEncoder = (options: EncoderOptions, label: string) => FragmentedStream;

export interface WatchdogOptions {
  /**
   * ffmpeg is declared frozen when it has written nothing for this long while at least two frames
   * wait in it (the muxer always holds the latest frame until the next one comes, so one waiting
   * frame is normal).
   */
  stallMs: number;
  /** The clock (default performance.now). */
  now?: () => number;
  /** How often the watchdog looks (default stallMs / 4); 0 = never by itself (tests call checkStall). */
  checkEveryMs?: number;
}

interface Running {
  encoder: FragmentedStream;
  /** The stream's index of the first frame written to this encoder; null before any. */
  firstFrame: number | null;
  /** Frames it took (accepted into its stdin). */
  framesIn: number;
  /** Fragments it wrote out. */
  fragmentsOut: number;
}

/** The frame the encoder holds back legitimately: the muxer closes a fragment when the next frame comes. */
const HELD_FRAMES = 1;

export class EncoderSupervisor extends EventEmitter<EncoderSupervisorEvents> {
  private current!: Running;
  private restartCount = 0;
  private closed = false;
  private failure: SinkstreamError | null = null;
  private outputEnded: Promise<void> = Promise.resolve();
  /** The stream's index of the next frame handed to writeFrame. */
  private nextFrame = 0;
  /** Since when frames beyond the held one have waited with no output; null while none wait. */
  private waitingSince: number | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(
    private readonly options: EncoderOptions,
    private readonly maxRestarts: number,
    private readonly label: string,
    private readonly startEncoder: StartEncoder = startFragmentedStream,
    private readonly watchdog: WatchdogOptions | null = null,
  ) {
    super();
    this.now = watchdog?.now ?? (() => performance.now());
  }

  /** Starts the first ffmpeg (throws ERR_FFMPEG_MISSING / ERR_ARGUMENT synchronously). */
  start(): void {
    this.spawn('start');
    const every = this.watchdog ? (this.watchdog.checkEveryMs ?? this.watchdog.stallMs / 4) : 0;
    if (every > 0) {
      this.watchdogTimer = setInterval(() => this.checkStall(), every);
      this.watchdogTimer.unref();
    }
  }

  get restarts(): number {
    return this.restartCount;
  }

  /** The running ffmpeg's process id (tests kill it). */
  get pid(): number | undefined {
    return this.current?.encoder.pid;
  }

  /** Frames taken by the running ffmpeg and not yet written out. */
  get framesWaiting(): number {
    return this.current ? this.current.framesIn - this.current.fragmentsOut : 0;
  }

  /**
   * The watchdog's look: if frames beyond the held one have waited in ffmpeg for stallMs with no
   * output, ffmpeg is frozen: it is killed and replaced. Returns true when it did that.
   */
  checkStall(): boolean {
    if (!this.watchdog || this.closed || this.failure || this.waitingSince === null) return false;
    const waited = this.now() - this.waitingSince;
    if (waited < this.watchdog.stallMs) return false;
    const running = this.current;
    const cause = new SinkstreamError(
      'ERR_ENCODER',
      `${this.label}: ffmpeg wrote nothing for ${Math.round(waited)} ms with ${running.framesIn - running.fragmentsOut} frames waiting (frozen)`,
    );
    this.replace(running, cause, 'stalled');
    return true;
  }

  /**
   * Hands one RGB24 frame to ffmpeg, waiting only for ffmpeg's own backpressure. If ffmpeg died,
   * the frame goes to its replacement. Rejects with ERR_ENCODER once restarts are used up.
   */
  async writeFrame(rgb: Uint8Array): Promise<void> {
    const frame = this.nextFrame++;
    for (;;) {
      if (this.failure) throw this.failure;
      const running = this.current;
      running.firstFrame ??= frame;
      // Counted as waiting from the moment it is handed over: a frozen ffmpeg never takes it.
      running.framesIn++;
      this.noteWaiting();
      try {
        await running.encoder.writeFrame(rgb);
        return;
      } catch (e) {
        running.framesIn--;
        if (this.closed) throw e;
        if (running === this.current) this.replace(running, e as Error, 'died');
      }
    }
  }

  /** Ends the input, lets ffmpeg write its last fragments (they are still emitted), waits. Idempotent. */
  async close(): Promise<void> {
    this.stopWatchdog();
    if (this.closed) return this.outputEnded;
    this.closed = true;
    if (!this.current) return;
    await this.current.encoder.close().catch(() => undefined);
    await this.outputEnded;
  }

  /** Stops ffmpeg at once, dropping what it holds. */
  async kill(): Promise<void> {
    this.stopWatchdog();
    this.closed = true;
    if (this.current) await this.current.encoder.kill().catch(() => undefined);
  }

  private stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = null;
  }

  /** Starts or stops the stall clock after frames went in or fragments came out. */
  private noteWaiting(progress = false): void {
    const waiting = this.current.framesIn - this.current.fragmentsOut > HELD_FRAMES;
    if (!waiting) this.waitingSince = null;
    else if (progress || this.waitingSince === null) this.waitingSince = this.now();
  }

  private spawn(reason: 'start' | 'encoder-restart'): void {
    const encoder = this.startEncoder(this.options, this.label);
    const running: Running = { encoder, firstFrame: null, framesIn: 0, fragmentsOut: 0 };
    this.current = running;
    this.waitingSince = null;
    const splitter = new Fmp4Splitter({
      onInit: (init) => running === this.current && this.emit('init', init, reason),
      onFragment: (fragment) => {
        if (running !== this.current) return;
        const frame = (running.firstFrame ?? 0) + running.fragmentsOut++;
        this.noteWaiting(true);
        this.emit('fragment', fragment, frame);
      },
    });
    this.outputEnded = new Promise((resolve) => {
      encoder.output.once('end', resolve);
      encoder.output.once('close', resolve);
      encoder.output.once('error', () => resolve());
    });
    encoder.output.on('data', (chunk: Buffer) => {
      if (running !== this.current) return;
      try {
        splitter.push(chunk);
      } catch (e) {
        this.replace(running, e as Error, 'died');
      }
    });
    encoder.on('died', (error) => this.replace(running, error, 'died'));
    encoder.on('exit', (exit) => {
      if (!exit.expected) this.replace(running, new SinkstreamError('ERR_ENCODER', `${this.label}: ffmpeg exited (code ${exit.code}, signal ${exit.signal})`), 'died');
    });
    // A start-up failure surfaces here as well as through writeFrame.
    encoder.started.catch((e: Error) => this.replace(running, e, 'died'));
  }

  /** Replaces a dead encoder once (several signals of one death arrive: died, exit, a failed write). */
  private replace(dead: Running, cause: Error, kind: RestartCause): void {
    if (dead !== this.current || this.closed || this.failure) return;
    void dead.encoder.kill().catch(() => undefined);
    if (this.restartCount >= this.maxRestarts) {
      this.failure = new SinkstreamError('ERR_ENCODER', `${this.label}: ffmpeg died ${this.restartCount + 1} times; last: ${cause.message}`, {
        cause,
      });
      this.stopWatchdog();
      this.emit('failed', this.failure);
      return;
    }
    this.restartCount++;
    try {
      this.spawn('encoder-restart');
    } catch (e) {
      this.failure = e instanceof SinkstreamError ? e : new SinkstreamError('ERR_ENCODER', `${this.label}: cannot restart ffmpeg: ${(e as Error).message}`);
      this.stopWatchdog();
      this.emit('failed', this.failure);
      return;
    }
    this.emit('restarted', cause, this.restartCount, kind);
  }
}
