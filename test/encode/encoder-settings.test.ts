import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  encoderOptionsFor,
  type EncoderOptions,
  encodedSize,
  fmp4StreamOutputOptions,
  keyframeInterval,
  mp4FileOutputOptions,
  rawRgbInputOptions,
  validateEncoderOptions,
} from '../../src/encode/encoder-settings.js';
import { isSinkstreamError } from '../../src/errors.js';
import { configSchema } from '../../src/config/schema.js';

const opts: EncoderOptions = { width: 64, height: 48, fps: 16, crf: 18, preset: 'veryfast', keyframeSeconds: 1 };

/** The value after `flag` in an argument list. */
function arg(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

test('validation names the key, the value and what was expected', () => {
  validateEncoderOptions('t', opts);
  const bad: Array<[Partial<EncoderOptions>, string]> = [
    [{ width: -2 }, 't: width = -2; expected an integer in 1..16384.'],
    [{ height: 20000 }, 't: height = 20000; expected an integer in 1..16384.'],
    [{ fps: Number.NaN }, 't: fps = null; expected a number in (0, 1000].'],
    [{ crf: 18.5 }, 't: crf = 18.5; expected an integer in 0..51.'],
    [{ keyframeSeconds: 0 }, 't: keyframeSeconds = 0; expected a positive number.'],
  ];
  for (const [patch, message] of bad) {
    try {
      validateEncoderOptions('t', { ...opts, ...patch });
      assert.unreachable();
    } catch (e) {
      assert.ok(isSinkstreamError(e));
      assert.is((e as Error).message, message);
    }
  }
});

test('keyframe interval and even sizes', () => {
  assert.is(keyframeInterval(16, 1), 16);
  assert.is(keyframeInterval(29.97, 2), 60);
  assert.is(keyframeInterval(16, 0.01), 1);
  assert.equal(encodedSize(64, 48), { width: 64, height: 48 });
  assert.equal(encodedSize(63, 47), { width: 64, height: 48 });
});

test('raw input: rgb24 of the given size and rate, and no probing (ffmpeg writes from the first frames)', () => {
  const a = rawRgbInputOptions({ ...opts, fps: 12.5 });
  assert.equal(a.slice(a.indexOf('-f')), ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-video_size', '64x48', '-framerate', '12.5']);
  assert.is(arg(a, '-probesize'), '32');
  assert.is(arg(a, '-fpsprobesize'), '0');
  assert.is(arg(a, '-analyzeduration'), '0');
});

test('file: x264 from config, yuv420p, fragmented MP4 cut at keyframes and every 0.25 s, flushed', () => {
  const a = mp4FileOutputOptions({ ...opts, keyframeSeconds: 2 });
  assert.is(arg(a, '-c:v'), 'libx264');
  assert.is(arg(a, '-preset'), 'veryfast');
  assert.is(arg(a, '-crf'), '18');
  assert.is(arg(a, '-pix_fmt'), 'yuv420p');
  assert.is(arg(a, '-g'), '32');
  assert.is(arg(a, '-movflags'), 'frag_keyframe+empty_moov+default_base_moof');
  assert.is(arg(a, '-frag_duration'), '250000');
  assert.is(arg(a, '-flush_packets'), '1');
  assert.is(arg(a, '-vf'), undefined);
  assert.is(arg(a, '-tune'), undefined);
  assert.is(arg(mp4FileOutputOptions({ ...opts, keyframeSeconds: 0.1 }), '-frag_duration'), '100000');
  assert.is(arg(mp4FileOutputOptions({ ...opts, width: 63 }), '-vf'), 'pad=64:48:0:0:black');
});

test('live: zerolatency, no B-frames, fixed keyframe interval of at most 1 s, a fragment per frame', () => {
  const a = fmp4StreamOutputOptions({ ...opts, keyframeSeconds: 0.5 });
  assert.is(arg(a, '-tune'), 'zerolatency');
  assert.is(arg(a, '-bf'), '0');
  assert.is(arg(a, '-g'), '8');
  assert.is(arg(a, '-keyint_min'), '8');
  assert.is(arg(a, '-sc_threshold'), '0');
  assert.is(arg(a, '-movflags'), 'empty_moov+default_base_moof+frag_every_frame');
  assert.is(arg(fmp4StreamOutputOptions({ ...opts, keyframeSeconds: 4 }), '-g'), '16');
});

test('encoderOptionsFor: output.crf / preset / keyframeSeconds at generation.fps unless given', () => {
  const config = configSchema.parse({ generation: { fps: 12 }, output: { crf: 30, preset: 'fast', keyframeSeconds: 2 } });
  assert.equal(encoderOptionsFor(config, { width: 64, height: 48 }), { width: 64, height: 48, fps: 12, crf: 30, preset: 'fast', keyframeSeconds: 2 });
  assert.is(encoderOptionsFor(config, { width: 64, height: 48 }, 16).fps, 16);
});

test.run();
