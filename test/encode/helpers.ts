/** Shared by the encode tests: ffprobe, temp folders, frames, polling. Not a test file. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ffmpeg, { type FfprobeData } from 'fluent-ffmpeg';
import { resolveFfprobePath } from '../../src/encode/ffmpeg-path.js';

export interface ProbedVideo {
  codec: string;
  pixFmt: string;
  width: number;
  height: number;
  /** Frames actually decoded (ffprobe -count_frames). */
  frames: number;
}

/** The first video stream of `file`, its frames counted by decoding (fluent-ffmpeg's ffprobe). */
export async function probeVideo(file: string): Promise<ProbedVideo> {
  const data = await new Promise<FfprobeData>((resolve, reject) =>
    ffmpeg(file)
      .setFfprobePath(resolveFfprobePath().path)
      .ffprobe(['-count_frames', '-select_streams', 'v:0'], (err: unknown, probed: FfprobeData) => (err ? reject(err) : resolve(probed))),
  );
  const stream = data.streams[0];
  if (stream === undefined) throw new Error(`ffprobe: no video stream in ${file}`);
  return {
    codec: stream.codec_name ?? '',
    pixFmt: stream.pix_fmt ?? '',
    width: stream.width ?? 0,
    height: stream.height ?? 0,
    frames: Number(stream.nb_read_frames),
  };
}

export function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sinkstream-${name}-`));
}

/** A frame that changes with i (a moving gradient): cheap to encode, not constant. */
export function gradientFrame(width: number, height: number, i: number): Uint8Array {
  const f = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      f[p] = (x * 4 + i * 3) & 255;
      f[p + 1] = (y * 4 + i * 5) & 255;
      f[p + 2] = (i * 7) & 255;
    }
  }
  return f;
}

/** Random bytes: large when encoded (used to fill pipes). */
export function noiseFrame(width: number, height: number, seed: number): Uint8Array {
  const f = new Uint8Array(width * height * 3);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < f.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    f[i] = s & 255;
  }
  return f;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it returns a value other than undefined, or fails after `ms`. */
export async function waitFor<T>(what: string, check: () => T | undefined, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
