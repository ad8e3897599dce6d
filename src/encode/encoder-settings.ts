/**
 * The ffmpeg command line for raw RGB24 frames in, H.264 in fragmented MP4 out: validation of the
 * encoder options and the argument lists, as pure functions (no process, no I/O).
 *
 * Only flags the bundled @ffmpeg-installer build (ffmpeg 4.x, 2018) knows are used.
 */
import { SinkstreamError } from '../errors.js';
import type { Config } from '../config/schema.js';

export type X264Preset = Config['output']['preset'];

export const X264_PRESETS: readonly X264Preset[] = [
  'ultrafast',
  'superfast',
  'veryfast',
  'faster',
  'fast',
  'medium',
  'slow',
];

export interface EncoderOptions {
  /** Frame size of the RGB24 frames handed to writeFrame. */
  width: number;
  height: number;
  /** Frames per second (may be fractional, e.g. 29.97). */
  fps: number;
  /** x264 constant rate factor, 0-51. */
  crf: number;
  preset: X264Preset;
  /** Seconds between keyframes. */
  keyframeSeconds: number;
}

/** Encoder settings for frames of `size` at `fps` (default generation.fps) from output.crf / preset / keyframeSeconds. */
export function encoderOptionsFor(config: Pick<Config, 'output' | 'generation'>, size: { width: number; height: number }, fps = config.generation.fps): EncoderOptions {
  const { crf, preset, keyframeSeconds } = config.output;
  return { width: size.width, height: size.height, fps, crf, preset, keyframeSeconds };
}

/** H.264 level 6.2's limit on a side; beyond it x264 refuses the size. */
const MAX_SIDE = 16384;

/**
 * The longest a fragment of a file may run before it is written out (fragments are also cut at
 * every keyframe). What ffmpeg holds unwritten is at most this much video plus x264's lookahead,
 * so this bounds the loss when ffmpeg itself is killed.
 */
export const FILE_FRAGMENT_SECONDS = 0.25;

/** The live stream's keyframe interval never exceeds this (a late joiner waits at most this long). */
export const LIVE_MAX_KEYFRAME_SECONDS = 1;

/** Throws ERR_ARGUMENT naming the first bad option. `what` names the caller, e.g. `openMp4File`. */
export function validateEncoderOptions(what: string, o: EncoderOptions): void {
  const bad = (key: string, expected: string, value: unknown): never => {
    throw new SinkstreamError('ERR_ARGUMENT', `${what}: ${key} = ${JSON.stringify(value)}; expected ${expected}.`);
  };
  if (!Number.isInteger(o.width) || o.width < 1 || o.width > MAX_SIDE) bad('width', `an integer in 1..${MAX_SIDE}`, o.width);
  if (!Number.isInteger(o.height) || o.height < 1 || o.height > MAX_SIDE) bad('height', `an integer in 1..${MAX_SIDE}`, o.height);
  if (typeof o.fps !== 'number' || !Number.isFinite(o.fps) || o.fps <= 0 || o.fps > 1000) bad('fps', 'a number in (0, 1000]', o.fps);
  if (!Number.isInteger(o.crf) || o.crf < 0 || o.crf > 51) bad('crf', 'an integer in 0..51', o.crf);
  if (!X264_PRESETS.includes(o.preset)) bad('preset', `one of ${X264_PRESETS.join(', ')}`, o.preset);
  if (typeof o.keyframeSeconds !== 'number' || !Number.isFinite(o.keyframeSeconds) || o.keyframeSeconds <= 0) {
    bad('keyframeSeconds', 'a positive number', o.keyframeSeconds);
  }
}

/** Bytes of one RGB24 frame. */
export function rgbFrameBytes(width: number, height: number): number {
  return width * height * 3;
}

/**
 * yuv420p halves chroma in both directions, so x264 needs even sides. Odd sizes are padded by
 * one black column / row on the right / bottom (the picture itself is untouched); the encoded
 * size is what this returns.
 */
export function encodedSize(width: number, height: number): { width: number; height: number } {
  return { width: width + (width % 2), height: height + (height % 2) };
}

/** Frames between keyframes: fps * seconds, at least 1. */
export function keyframeInterval(fps: number, seconds: number): number {
  return Math.max(1, Math.round(fps * seconds));
}

/**
 * Raw frames carry nothing to probe: their layout and rate are given here. Without the probe limits
 * ffmpeg reads ~5 s of input (analyzeduration; 20 frames at 4 fps) before it writes anything, so a
 * live stream's first picture, and the first after an encoder restart, would wait seconds for them.
 */
const NO_PROBING = ['-probesize', '32', '-fpsprobesize', '0', '-analyzeduration', '0'];

/** Options placed before `-i pipe:0`: the raw frames' layout and rate, and no probing. */
export function rawRgbInputOptions(o: EncoderOptions): string[] {
  return [...NO_PROBING, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-video_size', `${o.width}x${o.height}`, '-framerate', String(o.fps)];
}

function padFilter(o: EncoderOptions): string[] {
  const even = encodedSize(o.width, o.height);
  if (even.width === o.width && even.height === o.height) return [];
  return ['-vf', `pad=${even.width}:${even.height}:0:0:black`];
}

/** Quiet but useful stderr: errors, warnings and ffmpeg's "Exiting normally, received signal" line. */
const LOGGING = ['-hide_banner', '-nostats', '-loglevel', 'info'];

/**
 * A recorded file: scene cuts may add keyframes (quality), `-g` caps the interval. Fragments end
 * at every keyframe and after FILE_FRAGMENT_SECONDS, and each packet is flushed to the OS, so a
 * crash leaves every complete fragment on disk.
 */
export function mp4FileOutputOptions(o: EncoderOptions): string[] {
  const fragSeconds = Math.min(FILE_FRAGMENT_SECONDS, o.keyframeSeconds);
  return [
    ...LOGGING,
    ...padFilter(o),
    '-an',
    '-c:v', 'libx264',
    '-preset', o.preset,
    '-crf', String(o.crf),
    '-pix_fmt', 'yuv420p',
    '-g', String(keyframeInterval(o.fps, o.keyframeSeconds)),
    '-movflags', 'frag_keyframe+empty_moov+default_base_moof',
    '-frag_duration', String(Math.round(fragSeconds * 1e6)),
    '-flush_packets', '1',
    '-f', 'mp4',
  ];
}

/**
 * A live stream for Media Source Extensions: no B-frames and no lookahead (zerolatency), a fixed
 * keyframe interval of at most LIVE_MAX_KEYFRAME_SECONDS with no extra scene-cut keyframes (late
 * joiners start at a keyframe), and one fragment per frame (`frag_every_frame`; the muxer closes a
 * fragment when the next frame arrives, so a frame leaves one frame interval after it went in).
 * `separate_moof` is left out: it only matters with several tracks, and this stream has one.
 */
export function fmp4StreamOutputOptions(o: EncoderOptions): string[] {
  const gop = String(keyframeInterval(o.fps, Math.min(o.keyframeSeconds, LIVE_MAX_KEYFRAME_SECONDS)));
  return [
    ...LOGGING,
    ...padFilter(o),
    '-an',
    '-c:v', 'libx264',
    '-preset', o.preset,
    '-tune', 'zerolatency',
    '-crf', String(o.crf),
    '-pix_fmt', 'yuv420p',
    '-bf', '0',
    '-g', gop,
    '-keyint_min', gop,
    '-sc_threshold', '0',
    '-movflags', 'empty_moov+default_base_moof+frag_every_frame',
    '-flush_packets', '1',
    '-f', 'mp4',
  ];
}
