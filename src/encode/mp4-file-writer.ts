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
import { SinkstreamError } from '../errors.js';
import { resolveFfmpegPath } from './ffmpeg-path.js';
import { type EncoderOptions, mp4FileOutputOptions, rawRgbInputOptions, rgbFrameBytes, validateEncoderOptions } from './encoder-settings.js';
import { RawVideoEncoder } from './raw-video-encoder.js';
import { RgbEncoderFront } from './rgb-encoder-front.js';
import { parseMoof, readBoxHeader } from './mp4-boxes.js';

export type Mp4FileOptions = EncoderOptions;

export interface Mp4FileResult {
  path: string;
  /** Frames handed to ffmpeg. */
  frames: number;
  /**
   * Frames the finished file holds, counted in its fragments. Fewer than `frames` when ffmpeg was
   * interrupted (Ctrl-C reaches it too) before reading everything it was given; equal to `frames`
   * when the output cannot be read back (not a regular file).
   */
  framesInFile: number;
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

export class Mp4FileWriter extends RgbEncoderFront<Mp4FileWriterEvents> {
  readonly path: string;

  private closing: Promise<Mp4FileResult> | undefined;
  private aborting: Promise<void> | undefined;

  /** Use openMp4File(). */
  constructor(filePath: string, options: Mp4FileOptions, encoder: RawVideoEncoder) {
    super(options, encoder);
    this.path = filePath;
    encoder.on('died', (error) => this.emit('died', error));
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
        framesInFile: countFileFrames(this.path) ?? this.encoder.frames,
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
 * Samples in the complete fragments of a fragmented MP4 file, reading only box headers and the
 * `moof` boxes (never the media data). undefined when the path is not a regular file.
 */
export function countFileFrames(filePath: string): number | undefined {
  let fd: number;
  try {
    if (!fs.statSync(filePath).isFile()) return undefined;
    fd = fs.openSync(filePath, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const header = Buffer.alloc(16);
    let frames = 0;
    let moof: Buffer | null = null;
    for (let at = 0; at + 8 <= size; ) {
      const read = fs.readSync(fd, header, 0, 16, at);
      const box = readBoxHeader(header.subarray(0, read), 0);
      if (!box) break;
      const end = at + (box.end === Infinity ? size - at : box.end); // size 0: to the end of the file
      if (end - at < 8 || end > size) break; // cut short: only complete boxes count
      if (box.type === 'moof') {
        moof = Buffer.alloc(end - at);
        fs.readSync(fd, moof, 0, moof.length, at);
      } else if (box.type === 'mdat' && moof) {
        frames += parseMoof(moof, readBoxHeader(moof, 0)!).samples;
        moof = null;
      } else {
        moof = null;
      }
      at = end;
    }
    return frames;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Checks that `filePath` can be written before anything starts: its folder exists and takes new
 * files, it is not itself a folder, and an existing file there can be overwritten. Throws
 * ERR_ARGUMENT naming the path as `name` (the flag or key the user set it with). A device such as
 * /dev/full passes: whether its writes succeed is only known when ffmpeg writes (ERR_ENCODER).
 */
export function checkOutputFile(filePath: string, name: string): void {
  const bad = (what: string) => new SinkstreamError('ERR_ARGUMENT', `${name} ${filePath}: ${what}`);
  if (typeof filePath !== 'string' || filePath.length === 0) throw bad('expected a file path');
  const abs = path.resolve(filePath);
  const dir = path.dirname(abs);
  if (!isDirectory(dir)) throw bad(`the folder ${dir} does not exist; expected a file in an existing folder`);
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(abs);
  } catch {
    existing = undefined;
  }
  if (existing?.isDirectory()) throw bad(`is a folder; expected a file path such as ${path.join(filePath, 'out.mp4')}`);
  try {
    if (existing) fs.accessSync(abs, fs.constants.W_OK);
    else fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw bad(existing ? `the file cannot be overwritten (${code})` : `cannot create a file in ${dir} (${code}); expected a folder you can write to`);
  }
}

/**
 * Starts ffmpeg writing `filePath` (overwritten if it exists). Everything is validated before
 * ffmpeg is spawned: on bad arguments (ERR_ARGUMENT), a missing ffmpeg (ERR_FFMPEG_MISSING) or an
 * output path that cannot be written (ERR_ARGUMENT, checkOutputFile) no file is created. ffmpeg
 * creates the file when the first frame arrives.
 */
export async function openMp4File(filePath: string, options: Mp4FileOptions): Promise<Mp4FileWriter> {
  checkOutputFile(filePath, 'openMp4File: path');
  validateEncoderOptions('openMp4File', options);
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
