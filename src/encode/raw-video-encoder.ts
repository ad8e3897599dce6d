/**
 * One running ffmpeg, spawned directly (node:child_process), fed raw frames on stdin. The mechanics
 * shared by the file writer and the live stream:
 * - backpressure: a frame is written to ffmpeg's stdin and, when write() returns false, the
 *   returned promise waits for 'drain'; nothing piles up beyond stdin's own buffer;
 * - closed vs died (mediasoup's distinction): `end()` and `kill()` are asked-for stops; any other
 *   exit, or a non-zero exit after end(), is a death: pending and later writes reject with
 *   ERR_ENCODER carrying the tail of ffmpeg's stderr, and 'died' is emitted.
 * Frames are copied on entry, so the caller may reuse its buffer as soon as writeFrame returns.
 *
 * Not fluent-ffmpeg: this needs the process itself (its pid, exit code and signal, stdin's own
 * backpressure), which fluent-ffmpeg's public API does not give (only a kill() and error messages),
 * and the argument list here is already complete (encoder-settings.ts).
 */
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { SinkstreamError } from '../errors.js';

export interface EncoderExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the exit was asked for: end() and a clean exit, kill(), or an interrupt (below). */
  expected: boolean;
  /**
   * ffmpeg received SIGINT/SIGTERM itself (e.g. Ctrl-C reaches the whole process group) and
   * finished its output before exiting ("Exiting normally, received signal").
   */
  interrupted: boolean;
}

export interface RawVideoEncoderEvents {
  /** ffmpeg is gone, for whatever reason. */
  exit: [exit: EncoderExit];
  /** ffmpeg stopped without being asked to, or failed to finish. */
  died: [error: SinkstreamError];
}

export interface RawVideoEncoderSpec {
  ffmpegPath: string;
  /** Names the job in messages, e.g. `encoding out.mp4`. */
  label: string;
  frameBytes: number;
  inputOptions: string[];
  outputOptions: string[];
  /** A file path, or a stream that receives ffmpeg's stdout. */
  target: string | Writable;
}

const STDERR_TAIL_LINES = 25;
/** After 'exit', how long to wait for the last of stderr before reporting. */
const STDERR_GRACE_MS = 200;

type Requested = 'end' | 'kill' | null;

export class RawVideoEncoder extends EventEmitter<RawVideoEncoderEvents> {
  readonly label: string;
  readonly frameBytes: number;
  /** Resolves once ffmpeg is spawned; rejects with ERR_ENCODER if it could not be started. */
  readonly started: Promise<void>;
  /** Resolves when ffmpeg has exited (never rejects). */
  readonly exited: Promise<EncoderExit>;

  private child: ChildProcess | undefined;
  private requested: Requested = null;
  private failure: SinkstreamError | undefined;
  private exitInfo: EncoderExit | undefined;
  private framesWritten = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly drainWaiters = new Set<(e: Error) => void>();
  private readonly stderrTail: string[] = [];
  private stderrClosed!: Promise<void>;
  private resolveExited!: (e: EncoderExit) => void;

  constructor(spec: RawVideoEncoderSpec) {
    super();
    this.label = spec.label;
    this.frameBytes = spec.frameBytes;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));

    const output = typeof spec.target === 'string' ? spec.target : 'pipe:1';
    const args = [...spec.inputOptions, '-i', 'pipe:0', ...spec.outputOptions, output];
    const child: ChildProcess = spawn(spec.ffmpegPath, args, { stdio: ['pipe', output === 'pipe:1' ? 'pipe' : 'ignore', 'pipe'], windowsHide: true });
    this.started = new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.on('error', (err) => {
        if (child.pid !== undefined) return; // running: a failed kill(); the exit still comes
        const error = this.fail(new SinkstreamError('ERR_ENCODER', `could not start ffmpeg (${this.label}): ${err.message}`, { cause: err }));
        reject(error);
        this.emit('died', error);
        this.finish({ code: null, signal: null, expected: false, interrupted: false });
      });
    });
    this.started.catch(() => {}); // observed through writeFrame / end; never an unhandled rejection
    this.attach(child);
    if (typeof spec.target !== 'string') this.pipeOutput(child, spec.target);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Frames handed to ffmpeg's stdin so far. */
  get frames(): number {
    return this.framesWritten;
  }

  /** Bytes queued in our side of ffmpeg's stdin, not yet taken by the OS pipe. */
  get bufferedBytes(): number {
    return this.child?.stdin?.writableLength ?? 0;
  }

  /** The last lines ffmpeg wrote to stderr. */
  get stderr(): string {
    return this.stderrTail.join('\n');
  }

  /** The error that ended this encoder, if it died. */
  get error(): SinkstreamError | undefined {
    return this.failure;
  }

  writeFrame(rgb: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.requested) {
      return Promise.reject(new SinkstreamError('ERR_CLOSED', `writeFrame() after close (${this.label})`));
    }
    if (!(rgb instanceof Uint8Array) || rgb.byteLength !== this.frameBytes) {
      return Promise.reject(
        new SinkstreamError(
          'ERR_ARGUMENT',
          `writeFrame (${this.label}): a frame of ${rgb?.byteLength ?? typeof rgb} bytes; expected ${this.frameBytes} ` +
            '(width * height * 3, RGB24).',
        ),
      );
    }
    const chunk = Buffer.from(rgb); // a copy: the caller may reuse its array
    const write = this.chain.then(() => this.push(chunk));
    this.chain = write.catch(() => {});
    return write;
  }

  /** Ends stdin after the frames already accepted and waits for ffmpeg to exit. Idempotent. */
  end(): Promise<EncoderExit> {
    if (this.requested === null) {
      this.requested = 'end';
      void this.chain.then(async () => {
        try {
          await this.started;
        } catch {
          return;
        }
        this.child?.stdin?.end();
      });
    }
    return this.exited;
  }

  /** Stops ffmpeg with `signal` without waiting for queued frames; an expected exit. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<EncoderExit> {
    if (this.exitInfo) return this.exited;
    this.requested = 'kill';
    const stopped = new SinkstreamError('ERR_CLOSED', `ffmpeg (${this.label}) was stopped`);
    for (const reject of this.drainWaiters) reject(stopped);
    this.drainWaiters.clear();
    this.started.then(
      () => this.child?.kill(signal),
      () => {},
    );
    return this.exited;
  }

  private async push(chunk: Buffer): Promise<void> {
    await this.started;
    if (this.failure) throw this.failure;
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed || this.exitInfo) {
      throw this.failure ?? new SinkstreamError('ERR_CLOSED', `ffmpeg (${this.label}) is not running`);
    }
    const ok = stdin.write(chunk);
    this.framesWritten++;
    if (ok) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.drainWaiters.delete(rejectWaiter);
        resolve();
      };
      const rejectWaiter = (e: Error) => {
        stdin.off('drain', onDrain);
        reject(e);
      };
      this.drainWaiters.add(rejectWaiter);
      stdin.once('drain', onDrain);
    });
  }

  private attach(child: ChildProcess): void {
    this.child = child;
    // EPIPE when ffmpeg goes away: reported through the exit, not as an unhandled 'error'.
    child.stdin?.on('error', () => {});
    this.stderrClosed = new Promise((resolve) => {
      if (!child.stderr) return resolve();
      let partial = '';
      child.stderr.on('data', (text: string | Buffer) => {
        const lines = (partial + text.toString()).split(/\r?\n|\r/);
        partial = lines.pop() ?? '';
        for (const line of lines) this.keepStderr(line);
      });
      child.stderr.on('close', () => {
        if (partial) this.keepStderr(partial);
        resolve();
      });
    });
    child.on('exit', (code, signal) => {
      const grace = new Promise((resolve) => setTimeout(resolve, STDERR_GRACE_MS).unref());
      void Promise.race([this.stderrClosed, grace]).then(() => this.onExit(code, signal));
    });
  }

  /**
   * ffmpeg's stdout into `target` (ended with it). A target that closes or fails while ffmpeg runs
   * can take nothing more: ffmpeg is stopped, a death unless a stop was asked for.
   */
  private pipeOutput(child: ChildProcess, target: Writable): void {
    let outputEnded = false;
    child.stdout?.once('end', () => (outputEnded = true));
    child.stdout?.pipe(target);
    const stop = () => {
      if (!outputEnded && this.exitInfo === undefined) child.kill('SIGKILL');
    };
    target.once('close', stop);
    target.once('error', stop);
  }

  private keepStderr(line: string): void {
    if (line.trim() === '') return;
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const interrupted = code === 255 && /received signal/i.test(this.stderr);
    const expected = this.requested === 'kill' || interrupted || (this.requested === 'end' && code === 0);
    if (!expected) {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const when = this.requested === 'end' ? 'while finishing' : 'unexpectedly';
      const error = this.fail(
        new SinkstreamError(
          'ERR_ENCODER',
          `ffmpeg ${how} ${when} (${this.label}, after ${this.framesWritten} frames). ` +
            `Last lines of its stderr:\n${this.stderr || '(none)'}`,
        ),
      );
      this.emit('died', error);
    } else if (interrupted && this.requested === null) {
      this.fail(new SinkstreamError('ERR_ENCODER', `ffmpeg was interrupted by a signal and has finished its output (${this.label})`));
    }
    this.finish({ code, signal, expected, interrupted });
  }

  /** Records the first failure and rejects whoever waits for stdin to drain. */
  private fail(error: SinkstreamError): SinkstreamError {
    this.failure ??= error;
    for (const reject of this.drainWaiters) reject(this.failure);
    this.drainWaiters.clear();
    return this.failure;
  }

  private finish(exit: EncoderExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    this.emit('exit', exit);
    this.resolveExited(exit);
  }
}
