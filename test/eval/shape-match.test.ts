/** The shape metric: a detected object's outline against the trained shapes. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectFrame } from '../../src/eval/detector.js';
import { VideoMetrics } from '../../src/eval/metrics.js';
import { bestShape } from '../../src/eval/shape-match.js';
import { renderGroundTruth, shapeDistance } from '../../src/scene/ground-truth.js';
import { loadSceneSpec, parsePrompt, type ShapeName } from '../../src/scene/scene-spec.js';

const spec = loadSceneSpec();
const size = spec.frameSize;
const background = 'dark green';

/** One object of `shape` (radius r) on the background, hard-edged; `wobble` bends its outline with the angle. */
function draw(shape: ShapeName, cx: number, cy: number, r: number, wobble = 0): Uint8Array {
  const bg = spec.backgrounds.get(background)!;
  const fg = spec.objects.get('red')!;
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const bend = wobble * r * Math.sin(5 * Math.atan2(dy, dx));
      rgb.set(shapeDistance(shape, dx, dy, r, spec) <= bend ? fg : bg, (y * size + x) * 3);
    }
  }
  return rgb;
}

const detectRed = (rgb: Uint8Array) => detectFrame(rgb, size, spec, background, ['red']).objects.get('red')!;

test('each trained shape, at any size and place, matches its own kind best, with an IoU near 1', () => {
  for (const shape of spec.shapes) {
    for (const [cx, cy, r] of [[32, 32, 7], [20.3, 41.6, 5], [44, 18.2, 8]] as const) {
      const o = detectRed(draw(shape, cx, cy, r));
      assert.is(bestShape(o.shapes, spec), shape, `${shape} r=${r}: ${JSON.stringify(o.shapes)}`);
      assert.ok(o.shapes[shape] > 0.85, `${shape} r=${r}: ${o.shapes[shape]}`);
      for (const other of spec.shapes.filter((s) => s !== shape)) {
        assert.ok(o.shapes[other] < o.shapes[shape] - 0.05, `${shape} vs ${other}: ${JSON.stringify(o.shapes)}`);
      }
    }
  }
});

test('a ragged outline scores lower against its shape than the clean one', () => {
  for (const shape of spec.shapes) {
    const clean = detectRed(draw(shape, 32, 32, 7)).shapes[shape];
    const ragged = detectRed(draw(shape, 32, 32, 7, 0.35)).shapes[shape];
    assert.ok(ragged < clean - 0.1, `${shape}: ragged ${ragged} vs clean ${clean}`);
  }
});

test('per second: ground truth scores high; the right colours in the wrong shapes score low accuracy', () => {
  const prompt = 'a red square bouncing on a dark green background';
  const scene = parsePrompt(prompt, spec);
  const truth = new VideoMetrics(scene, spec, 16);
  for (const f of renderGroundTruth(scene, spec, 0, 32)) truth.add(f);
  const [t0, t1] = truth.finish();
  for (const row of [t0, t1]) {
    assert.is(row.shapeAccuracy, 1);
    assert.ok(row.shapeMatch > 0.9, `${row.shapeMatch}`);
  }
  // the same video drawn with circles: colour present, shape wrong
  const circles = new VideoMetrics(parsePrompt(prompt, spec), spec, 16);
  const asCircle = parsePrompt('a red circle bouncing on a dark green background', spec);
  for (const f of renderGroundTruth(asCircle, spec, 0, 16)) circles.add(f);
  const [c0] = circles.finish();
  assert.is(c0.colourFidelity, 1);
  assert.is(c0.shapeAccuracy, 0);
  assert.ok(c0.shapeMatch < t0.shapeMatch - 0.05, `${c0.shapeMatch} vs ${t0.shapeMatch}`);
});

test("another object's shape: the shape words bound to the wrong colours are counted, the right ones are not", () => {
  const prompt = 'a white square, a magenta circle and a cyan triangle bouncing on a black background';
  // the first 8 frames: these scenes' objects do not touch there (where they do, an occluded outline may match another shape)
  const measure = (drawn: string) => {
    const m = new VideoMetrics(parsePrompt(prompt, spec), spec, 8);
    for (const f of renderGroundTruth(parsePrompt(drawn, spec), spec, 0, 8)) m.add(f);
    return m.finish()[0];
  };
  const truth = measure(prompt);
  assert.is(truth.shapeSwapped, 0);
  assert.is(truth.shapeAccuracy, 1);
  // every shape word drawn, each on another object's colour
  const rotated = measure('a white circle, a magenta triangle and a cyan square bouncing on a black background');
  assert.is(rotated.colourFidelity, 1);
  assert.is(rotated.shapeAccuracy, 0);
  assert.is(rotated.shapeSwapped, 1);
  // one object takes another's shape, one keeps its own
  const mixed = measure('a white circle, a magenta circle and a cyan triangle bouncing on a black background');
  assert.ok(Math.abs(mixed.shapeSwapped - 1 / 3) < 1e-9, `${mixed.shapeSwapped}`);
  assert.ok(Math.abs(mixed.shapeAccuracy - 2 / 3) < 1e-9, `${mixed.shapeAccuracy}`);
});

test("another object's shape is not measured where no other object has a different shape", () => {
  for (const prompt of ['a red square bouncing on a dark green background', 'a red square and a yellow square bouncing on a dark green background']) {
    const scene = parsePrompt(prompt, spec);
    const m = new VideoMetrics(scene, spec, 8);
    for (const f of renderGroundTruth(scene, spec, 0, 8)) m.add(f);
    const [row] = m.finish();
    assert.is(row.shapeAccuracy, 1, prompt);
    assert.ok(Number.isNaN(row.shapeSwapped), `${prompt}: ${row.shapeSwapped}`);
  }
});

test('a second with no prompted object has no shape score', () => {
  const scene = parsePrompt('a red circle bouncing on a dark green background', spec);
  const m = new VideoMetrics(scene, spec, 4);
  const bg = spec.backgrounds.get(background)!;
  for (let i = 0; i < 4; i++) m.add(new Uint8Array(size * size * 3).map((_, j) => bg[j % 3]));
  const [row] = m.finish();
  assert.ok(Number.isNaN(row.shapeMatch) && Number.isNaN(row.shapeAccuracy) && Number.isNaN(row.shapeSwapped));
});

test.run();
