/**
 * What an ffmpeg front end over RawVideoEncoder shows alike (the live fMP4 stream, fmp4-stream.ts, and the MP4 file
 * writer, mp4-file-writer.ts): the frame size given and the even size encoded, ffmpeg's pid, the frames and bytes
 * handed over so far, and writeFrame.
 */
import { EventEmitter } from 'node:events';
import { encodedSize } from './encoder-settings.js';
import type { RawVideoEncoder } from './raw-video-encoder.js';

/** `Events`: the front end's own events, as node:events' EventEmitter takes them. */
export abstract class RgbEncoderFront<Events extends Record<keyof Events, any[]>> extends EventEmitter<Events> {
  /** Size of the frames given to writeFrame. */
  readonly width: number;
  readonly height: number;
  /** Size encoded (rounded up to even: yuv420p). */
  readonly encodedWidth: number;
  readonly encodedHeight: number;
  readonly frameBytes: number;

  protected constructor(
    size: { width: number; height: number },
    protected readonly encoder: RawVideoEncoder,
  ) {
    super();
    this.width = size.width;
    this.height = size.height;
    const even = encodedSize(size.width, size.height);
    this.encodedWidth = even.width;
    this.encodedHeight = even.height;
    this.frameBytes = encoder.frameBytes;
  }

  /** ffmpeg's process id (tests, diagnostics). */
  get pid(): number | undefined {
    return this.encoder.pid;
  }

  /** Frames handed to ffmpeg so far. */
  get frames(): number {
    return this.encoder.frames;
  }

  /** Bytes waiting in our side of ffmpeg's stdin (bounded by backpressure). */
  get bufferedBytes(): number {
    return this.encoder.bufferedBytes;
  }

  /**
   * Queues one RGB24 frame (width * height * 3 bytes; copied). Resolves when ffmpeg's stdin can take more,
   * i.e. after 'drain' when its buffer is full: await it before producing the next frame. Rejects with
   * ERR_ENCODER (with ffmpeg's stderr tail) if ffmpeg died, ERR_CLOSED once the front end was closed or
   * stopped, ERR_ARGUMENT for a frame of the wrong size.
   */
  writeFrame(rgb: Uint8Array): Promise<void> {
    return this.encoder.writeFrame(rgb);
  }
}
