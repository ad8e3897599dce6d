/** The border-sharpness metric: RGB gradient on the borders of the detected prompted objects. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectFrame } from '../../src/eval/detector.js';
import { VideoMetrics } from '../../src/eval/metrics.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';

const spec = loadSceneSpec();
const size = spec.frameSize;
const background = 'dark green';
const scene = parsePrompt(`a red circle bouncing on a ${background} background`, spec);

/** A hard-edged disc of `colour` on the prompt's background. */
function disc(colour: string, cx = 32, cy = 32, r = 9): Uint8Array {
  const bg = spec.backgrounds.get(background)!;
  const fg = spec.objects.get(colour)!;
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const c = Math.hypot(x + 0.5 - cx, y + 0.5 - cy) <= r ? fg : bg;
      rgb.set(c, (y * size + x) * 3);
    }
  }
  return rgb;
}

/** A (2k+1)^2 box blur, edges clamped. */
function blur(rgb: Uint8Array, k: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let n = 0;
        for (let dy = -k; dy <= k; dy++) {
          for (let dx = -k; dx <= k; dx++) {
            const xx = Math.min(size - 1, Math.max(0, x + dx));
            const yy = Math.min(size - 1, Math.max(0, y + dy));
            sum += rgb[(yy * size + xx) * 3 + c];
            n++;
          }
        }
        out[(y * size + x) * 3 + c] = Math.round(sum / n);
      }
    }
  }
  return out;
}

const detect = (rgb: Uint8Array, prompted = ['red']) => detectFrame(rgb, size, spec, background, prompted);

test('a sharp disc has a larger border gradient than the same disc blurred; both are detected', () => {
  const sharp = detect(disc('red'));
  const soft = detect(blur(disc('red'), 2));
  assert.ok(sharp.objects.has('red') && soft.objects.has('red'));
  assert.ok(Number.isFinite(sharp.borderGradient) && Number.isFinite(soft.borderGradient));
  assert.ok(sharp.borderGradient > 1.5 * soft.borderGradient, `sharp ${sharp.borderGradient} vs blurred ${soft.borderGradient}`);
  // a hard step of red on dark green, half of it seen by a central difference across the border
  const step = Math.hypot(...spec.objects.get('red')!.map((v, i) => v - spec.backgrounds.get(background)![i]));
  assert.ok(sharp.borderGradient > 0.4 * step && sharp.borderGradient < step, `${sharp.borderGradient} vs step ${step}`);
});

test('no prompted object detected: NaN (an empty frame, or only an unprompted colour)', () => {
  const bg = spec.backgrounds.get(background)!;
  const flat = new Uint8Array(size * size * 3).map((_, i) => bg[i % 3]);
  assert.ok(Number.isNaN(detect(flat).borderGradient));
  const blue = detect(disc('blue'));
  assert.ok(blue.objects.has('blue'));
  assert.ok(Number.isNaN(blue.borderGradient), 'an unprompted object has no border in this metric');
});

test('per second: mean over frames with a prompted object, NaN for a second without one; Laplacian sharpness kept apart', () => {
  const m = new VideoMetrics(scene, spec, 4);
  const bg = spec.backgrounds.get(background)!;
  const flat = new Uint8Array(size * size * 3).map((_, i) => bg[i % 3]);
  const sharp = disc('red');
  for (let i = 0; i < 4; i++) m.add(i < 2 ? sharp : flat);
  for (let i = 0; i < 4; i++) m.add(flat);
  const [first, second] = m.finish();
  assert.ok(Math.abs(first.borderSharpness - detect(sharp).borderGradient) < 1e-9);
  assert.ok(Number.isNaN(second.borderSharpness));
  assert.ok(Number.isFinite(second.sharpness), 'the Laplacian sharpness is a separate, whole-frame metric');
});

test.run();
