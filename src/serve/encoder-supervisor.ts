/**
 * Keeps a live stream's encoder alive: one ffmpeg (src/encode/fmp4-stream.ts) at a time, its output
 * cut into init segment and fragments. If ffmpeg dies (or writes garbage), a new one is started, its
 * new init segment is announced, and the frame being written is handed to the new one; after
 * `maxRestarts` restarts the stream fails. Closing (asked for) and dying (failed) are told apart.
 */
import { EventEmitter } from 'node:events';
import { SinkstreamError } from '../errors.js';
import type { EncoderOptions } from '../encode/encoder-settings.js';
import { startFragmentedStream, type FragmentedStream } from '../encode/fmp4-stream.js';
import { Fmp4Splitter, type InitSegment, type MediaFragment } from './fmp4-splitter.js';

export interface EncoderSupervisorEvents {
  init: [init: InitSegment, reason: 'start' | 'encoder-restart'];
  fragment: [fragment: MediaFragment];
  /** ffmpeg died and a new one was started. */
  restarted: [cause: Error, restarts: number];
  /** ffmpeg died once too often; writes now reject. */
  failed: [error: SinkstreamError];
}

export type StartEncoder = (options: EncoderOptions, label: string) => FragmentedStream;

export class EncoderSupervisor extends EventEmitter<EncoderSupervisorEvents> {
  private current!: FragmentedStream;
  private restartCount = 0;
  private closed = false;
  private failure: SinkstreamError | null = null;
  private outputEnded: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: EncoderOptions,
    private readonly maxRestarts: number,
    private readonly label: string,
    private readonly startEncoder: StartEncoder = startFragmentedStream,
  ) {
    super();
  }

  /** Starts the first ffmpeg (throws ERR_FFMPEG_MISSING / ERR_ARGUMENT synchronously). */
  start(): void {
    this.spawn('start');
  }

  get restarts(): number {
    return this.restartCount;
  }

  /** The running ffmpeg's process id (tests kill it). */
  get pid(): number | undefined {
    return this.current?.pid;
  }

  /**
   * Hands one RGB24 frame to ffmpeg, waiting only for ffmpeg's own backpressure. If ffmpeg died,
   * the frame goes to its replacement. Rejects with ERR_ENCODER once restarts are used up.
   */
  async writeFrame(rgb: Uint8Array): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      const encoder = this.current;
      try {
        await encoder.writeFrame(rgb);
        return;
      } catch (e) {
        if (this.closed) throw e;
        if (encoder === this.current) this.replace(encoder, e as Error);
      }
    }
  }

  /** Ends the input, lets ffmpeg write its last fragments (they are still emitted), waits. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return this.outputEnded;
    this.closed = true;
    if (!this.current) return;
    await this.current.close().catch(() => undefined);
    await this.outputEnded;
  }

  /** Stops ffmpeg at once, dropping what it holds. */
  async kill(): Promise<void> {
    this.closed = true;
    if (this.current) await this.current.kill().catch(() => undefined);
  }

  private spawn(reason: 'start' | 'encoder-restart'): void {
    const encoder = this.startEncoder(this.options, this.label);
    this.current = encoder;
    const splitter = new Fmp4Splitter({
      onInit: (init) => encoder === this.current && this.emit('init', init, reason),
      onFragment: (fragment) => encoder === this.current && this.emit('fragment', fragment),
    });
    this.outputEnded = new Promise((resolve) => {
      encoder.output.once('end', resolve);
      encoder.output.once('close', resolve);
      encoder.output.once('error', () => resolve());
    });
    encoder.output.on('data', (chunk: Buffer) => {
      if (encoder !== this.current) return;
      try {
        splitter.push(chunk);
      } catch (e) {
        this.replace(encoder, e as Error);
      }
    });
    encoder.on('died', (error) => this.replace(encoder, error));
    encoder.on('exit', (exit) => {
      if (!exit.expected) this.replace(encoder, new SinkstreamError('ERR_ENCODER', `${this.label}: ffmpeg exited (code ${exit.code}, signal ${exit.signal})`));
    });
    // A start-up failure surfaces here as well as through writeFrame.
    encoder.started.catch((e: Error) => this.replace(encoder, e));
  }

  /** Replaces a dead encoder once (several signals of one death arrive: died, exit, a failed write). */
  private replace(dead: FragmentedStream, cause: Error): void {
    if (dead !== this.current || this.closed || this.failure) return;
    void dead.kill().catch(() => undefined);
    if (this.restartCount >= this.maxRestarts) {
      this.failure = new SinkstreamError('ERR_ENCODER', `${this.label}: ffmpeg died ${this.restartCount + 1} times; last: ${cause.message}`, {
        cause,
      });
      this.emit('failed', this.failure);
      return;
    }
    this.restartCount++;
    try {
      this.spawn('encoder-restart');
    } catch (e) {
      this.failure = e instanceof SinkstreamError ? e : new SinkstreamError('ERR_ENCODER', `${this.label}: cannot restart ffmpeg: ${(e as Error).message}`);
      this.emit('failed', this.failure);
      return;
    }
    this.emit('restarted', cause, this.restartCount);
  }
}
