/**
 * The H.264 encoder measured as a pipeline stage (`sinkstream bench`): the frames go to the same ffmpeg
 * command as a render (x264, the configured preset and crf, fragmented MP4) writing a temporary file that
 * is removed afterwards. Writes are queued and never awaited by the caller, so the encoder runs alongside
 * the generation as it does in a render; what is measured is how long each block's frames took to be
 * taken in, and the encoder's own rate from the first frame to ffmpeg's exit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RawVideoEncoder } from './raw-video-encoder.js';
import { mp4FileOutputOptions, rawRgbInputOptions, rgbFrameBytes, type EncoderOptions } from './encoder-settings.js';

export interface EncodeFigures {
  frames: number;
  /** Per block: from the first of its frames entering ffmpeg's input to the last one taken, ms. */
  blockMs: number[];
  /** Frames over the time from the first frame written to ffmpeg's exit (everything encoded and written). */
  encoderFps: number;
  /** From the last frame handed to the meter to ffmpeg's exit: the backlog at the end, ms. */
  drainMs: number;
  /** Size of the encoded file, bytes. */
  bytes: number;
}

export class EncodeMeter {
  private chain: Promise<void> = Promise.resolve();
  private readonly blockMs: number[] = [];
  private frames = 0;
  private firstWriteAt: number | null = null;
  private lastHandedAt = 0;
  private failure: unknown = null;

  private constructor(
    private readonly encoder: RawVideoEncoder,
    private readonly file: string,
    private readonly dir: string,
  ) {}

  static open(ffmpegPath: string, options: EncoderOptions): EncodeMeter {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sinkstream-bench-'));
    const file = path.join(dir, 'bench.mp4');
    const encoder = new RawVideoEncoder({
      ffmpegPath,
      label: 'bench encode',
      frameBytes: rgbFrameBytes(options.width, options.height),
      inputOptions: rawRgbInputOptions(options),
      outputOptions: mp4FileOutputOptions(options),
      target: file,
    });
    return new EncodeMeter(encoder, file, dir);
  }

  /** The meter's own scratch folder (removed by finish()). */
  get scratchDir(): string {
    return this.dir;
  }

  /** Queues a block's frames; returns at once. A failure is reported by finish(). */
  writeBlock(frames: Uint8Array[]): void {
    this.lastHandedAt = performance.now();
    this.chain = this.chain.then(async () => {
      if (this.failure || frames.length === 0) return;
      const t0 = performance.now();
      this.firstWriteAt ??= t0;
      try {
        for (const frame of frames) {
          await this.encoder.writeFrame(frame);
          this.frames++;
        }
      } catch (e) {
        this.failure = e;
        return;
      }
      this.blockMs.push(performance.now() - t0);
    });
  }

  /** Ends the input, waits for ffmpeg to finish, removes the file; rejects with the encoder's error. */
  async finish(): Promise<EncodeFigures> {
    try {
      await this.chain;
      if (this.failure) throw this.failure;
      await this.encoder.end();
      const endedAt = performance.now();
      if (this.encoder.error) throw this.encoder.error;
      const seconds = (endedAt - (this.firstWriteAt ?? endedAt)) / 1000;
      const bytes = fs.existsSync(this.file) ? fs.statSync(this.file).size : 0;
      return { frames: this.frames, blockMs: this.blockMs, encoderFps: seconds > 0 ? this.frames / seconds : 0, drainMs: endedAt - this.lastHandedAt, bytes };
    } finally {
      await this.encoder.kill().catch(() => undefined);
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Stops ffmpeg and removes the file (a failed bench). */
  async abort(): Promise<void> {
    await this.encoder.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
