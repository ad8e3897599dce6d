/** Real fragmented MP4 made by the project's ffmpeg binary from a synthetic test pattern. */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function ffmpegPath(): string {
  return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
}

export interface FixtureOptions {
  frames: number;
  fps?: number;
  gop?: number;
  /** microseconds; 0 = fragment at keyframes only */
  fragDurationUs?: number;
  size?: string;
}

/** Encodes `frames` frames of testsrc to fMP4 (x264, no B-frames) and returns the bytes. */
export function makeFmp4(o: FixtureOptions): Promise<Buffer> {
  const fps = o.fps ?? 16;
  const args = [
    '-hide_banner', '-loglevel', 'error',
    '-f', 'lavfi', '-i', `testsrc=size=${o.size ?? '64x64'}:rate=${fps}`,
    '-frames:v', String(o.frames), '-pix_fmt', 'yuv420p',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-g', String(o.gop ?? 8),
    '-movflags', 'empty_moov+default_base_moof+frag_keyframe',
    ...(o.fragDurationUs ? ['-frag_duration', String(o.fragDurationUs)] : []),
    '-f', 'mp4', 'pipe:1',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg exited ${code}: ${err}`))));
  });
}
