/**
 * A live H.264 fragmented-MP4 byte stream for Media Source Extensions (docs/serving.md, delivery):
 * raw RGB24 frames in, `output` carries an init segment (ftyp + moov) and then one moof + mdat
 * fragment per frame. Low-latency x264 settings: zerolatency, no B-frames, a fixed keyframe
 * interval of at most one second. Feed `output` to an Fmp4Splitter (src/serve/fmp4-splitter.ts) to
 * get whole segments.
 *
 * `output` must be read: it is a bounded stream, and an unread output stalls ffmpeg, which then
 * stops taking frames (writeFrame waits). Per-viewer queues belong after the splitter.
 */
import { PassThrough, type Readable } from 'node:stream';
import { SinkstreamError } from '../errors.js';
import { resolveFfmpegPath } from './ffmpeg-path.js';
import { type EncoderOptions, fmp4StreamOutputOptions, rawRgbInputOptions, rgbFrameBytes, validateEncoderOptions } from './encoder-settings.js';
import { type EncoderExit, RawVideoEncoder } from './raw-video-encoder.js';
import { RgbEncoderFront } from './rgb-encoder-front.js';

export type FragmentedStreamOptions = EncoderOptions;
export type FragmentedStreamExit = EncoderExit;

export interface FragmentedStreamEvents {
  /** ffmpeg is gone. `expected` tells closed/killed (asked for) from died (failed). */
  exit: [exit: FragmentedStreamExit];
  /** ffmpeg failed; the error carries the tail of its stderr. Followed by 'exit'. */
  died: [error: SinkstreamError];
}

export class FragmentedStream extends RgbEncoderFront<FragmentedStreamEvents> {
  /** The fMP4 bytes: init segment first, then fragments. Ends when ffmpeg exits. */
  readonly output: Readable;
  /** Resolves when ffmpeg has exited (never rejects). */
  readonly exited: Promise<FragmentedStreamExit>;

  private closing: Promise<FragmentedStreamExit> | undefined;

  /** Use startFragmentedStream(). */
  constructor(options: FragmentedStreamOptions, ffmpegPath: string, label: string) {
    const output = new PassThrough();
    super(
      options,
      new RawVideoEncoder({
        ffmpegPath,
        label,
        frameBytes: rgbFrameBytes(options.width, options.height),
        inputOptions: rawRgbInputOptions(options),
        outputOptions: fmp4StreamOutputOptions(options),
        target: output,
      }),
    );
    this.output = output;
    this.exited = this.encoder.exited;
    this.encoder.on('died', (error) => this.emit('died', error));
    this.encoder.on('exit', (exit) => this.emit('exit', exit));
  }

  /** Resolves once ffmpeg is running; rejects with ERR_ENCODER if it could not start. */
  get started(): Promise<void> {
    return this.encoder.started;
  }

  /**
   * Ends the input; ffmpeg writes the last fragment and exits; `output` ends. Resolves with the
   * exit (expected unless ffmpeg failed while finishing). Idempotent.
   */
  close(): Promise<FragmentedStreamExit> {
    this.closing ??= this.encoder.end();
    return this.closing;
  }

  /** Stops ffmpeg at once (SIGKILL); an expected exit. Queued frames are dropped. */
  kill(): Promise<FragmentedStreamExit> {
    return this.encoder.kill('SIGKILL');
  }
}

/**
 * Starts ffmpeg for a live stream. Options are validated first (ERR_ARGUMENT) and ffmpeg is
 * resolved first (ERR_FFMPEG_MISSING); both throw synchronously. Start-up failures of ffmpeg
 * itself surface through `started`, writeFrame and the 'died' / 'exit' events.
 */
export function startFragmentedStream(options: FragmentedStreamOptions, label = 'live fMP4 stream'): FragmentedStream {
  validateEncoderOptions('startFragmentedStream', options);
  const ffmpegPath = resolveFfmpegPath().path;
  return new FragmentedStream(options, ffmpegPath, label);
}
