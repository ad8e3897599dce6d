/**
 * Writes RGB24 frames to an H.264 fragmented MP4 file, in place and progressively: the file is
 * playable while it is being written and after any crash (ours or ffmpeg's), up to its last
 * complete fragment. Fragments are cut at each keyframe and at least every FILE_FRAGMENT_SECONDS.
 *
 * If our process dies, ffmpeg sees the end of its stdin and finishes the file by itself; if
 * ffmpeg dies, the fragments already written stay decodable (no moov rewrite is ever needed).
 * Odd frame sizes are padded by one black column / row to the even size yuv420p needs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { SinkstreamError } from '../errors.js';
import { resolveFfmpegPath } from './ffmpeg-path.js';
import {
  type EncoderOptions,
  encodedSize,
  mp4FileOutputOptions,
  rawRgbInputOptions,
  rgbFrameBytes,
  validateEncoderOptions,
} from './encoder-settings.js';
import { RawVideoEncoder } from './raw-video-encoder.js';

export type Mp4FileOptions = EncoderOptions;

export interface Mp4FileResult {
  path: string;
  /** Frames handed to ffmpeg. */
  frames: number;
  /** Size of the finished file. */
  bytes: number;
  /** ffmpeg itself got SIGINT/SIGTERM (e.g. Ctrl-C) and finished the file on its own. */
  interrupted: boolean;
}

export interface Mp4FileWriterEvents {
  /** close() finished: the file is complete. */
  closed: [result: Mp4FileResult];
  /** ffmpeg failed or was killed from outside; the file holds the fragments written so far. */
  died: [error: SinkstreamError];
}

export class Mp4FileWriter extends EventEmitter<Mp4FileWriterEvents> {
  readonly path: string;
  /** Size of the frames given to writeFrame. */
  readonly width: number;
  readonly height: number;
  /** Size in the file (rounded up to even). */
  readonly encodedWidth: number;
  readonly encodedHeight: number;
  readonly frameBytes: number;

  private closing: Promise<Mp4FileResult> | undefined;
  private aborting: Promise<void> | undefined;

  /** Use openMp4File(). */
  constructor(
    filePath: string,
    options: Mp4FileOptions,
    private readonly encoder: RawVideoEncoder,
  ) {
    super();
    this.path = filePath;
    this.width = options.width;
    this.height = options.height;
    const even = encodedSize(options.width, options.height);
    this.encodedWidth = even.width;
    this.encodedHeight = even.height;
    this.frameBytes = encoder.frameBytes;
    encoder.on('died', (error) => this.emit('died', error));
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
   * Queues one RGB24 frame (width * height * 3 bytes; copied). Resolves when ffmpeg's stdin can
   * take more, i.e. after 'drain' when its buffer is full: await it before producing the next
   * frame. Rejects with ERR_ENCODER (with ffmpeg's stderr tail) if ffmpeg died, ERR_CLOSED after
   * close()/abort(), ERR_ARGUMENT for a frame of the wrong size.
   */
  writeFrame(rgb: Uint8Array): Promise<void> {
    return this.encoder.writeFrame(rgb);
  }

  /**
   * Ends the input after the frames already accepted and waits for ffmpeg to finish the file.
   * Idempotent: every call returns the same promise. Rejects with ERR_ENCODER if ffmpeg died or
   * exited with an error (the file then holds what was written up to its last fragment).
   */
  close(): Promise<Mp4FileResult> {
    this.closing ??= (async () => {
      const exit = await this.encoder.end();
      const failure = this.encoder.error;
      if (!exit.expected || (failure && !exit.interrupted)) {
        throw failure ?? new SinkstreamError('ERR_ENCODER', `ffmpeg did not finish ${this.path}`);
      }
      const result: Mp4FileResult = {
        path: this.path,
        frames: this.encoder.frames,
        bytes: fileSize(this.path),
        interrupted: exit.interrupted,
      };
      this.emit('closed', result);
      return result;
    })();
    return this.closing;
  }

  /**
   * Stops without waiting for queued frames: SIGTERM (ffmpeg writes out what it has read and
   * closes the file), SIGKILL if it has not exited within `graceMs`. The file keeps every
   * complete fragment. Idempotent.
   */
  abort(graceMs = 2000): Promise<void> {
    this.aborting ??= (async () => {
      const exited = this.encoder.kill('SIGTERM');
      const timer = setTimeout(() => void this.encoder.kill('SIGKILL'), graceMs);
      timer.unref();
      await exited;
      clearTimeout(timer);
    })();
    return this.aborting;
  }
}

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

/**
 * Starts ffmpeg writing `filePath` (overwritten if it exists). Everything is validated before
 * ffmpeg is spawned: on bad arguments (ERR_ARGUMENT), a missing ffmpeg (ERR_FFMPEG_MISSING) or a
 * missing output folder (ERR_ARGUMENT) no file is created. ffmpeg creates the file when the
 * first frame arrives.
 */
export async function openMp4File(filePath: string, options: Mp4FileOptions): Promise<Mp4FileWriter> {
  if (typeof filePath !== 'string' || filePath.length === 0) {
    throw new SinkstreamError('ERR_ARGUMENT', `openMp4File: path = ${JSON.stringify(filePath)}; expected a file path.`);
  }
  validateEncoderOptions('openMp4File', options);
  const dir = path.dirname(path.resolve(filePath));
  if (!isDirectory(dir)) {
    throw new SinkstreamError('ERR_ARGUMENT', `openMp4File: the folder of ${filePath} (${dir}) does not exist.`);
  }
  if (isDirectory(filePath)) {
    throw new SinkstreamError('ERR_ARGUMENT', `openMp4File: ${filePath} is a folder; expected a file path.`);
  }
  const ffmpegPath = resolveFfmpegPath().path;
  const encoder = new RawVideoEncoder({
    ffmpegPath,
    label: `encoding ${filePath}`,
    frameBytes: rgbFrameBytes(options.width, options.height),
    inputOptions: rawRgbInputOptions(options),
    // `-y`: overwrite. `file:` keeps ffmpeg from reading a name like `a:b.mp4` or `-x.mp4` as a
    // protocol or an option.
    outputOptions: ['-y', ...mp4FileOutputOptions(options)],
    target: `file:${path.resolve(filePath)}`,
  });
  await encoder.started;
  return new Mp4FileWriter(filePath, options, encoder);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
