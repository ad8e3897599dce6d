/** Per-second metrics on the ground-truth video itself: the ideal scores. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VideoMetrics, checkPromptedMotion } from '../../src/eval/metrics.js';
import { renderGroundTruth } from '../../src/scene/ground-truth.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';
import { pasteObjects, squareFrame } from '../helpers/frames.js';

const spec = loadSceneSpec();

test('ground truth: full fidelity, no extra objects, exact positions, the layout speed, no drift', () => {
  const scene = parsePrompt('a yellow triangle bouncing on a dark blue background', spec);
  const m = new VideoMetrics(scene, spec, 16, 3);
  for (const f of renderGroundTruth(scene, spec, 0, 48)) m.add(f);
  const rows = m.finish();
  assert.is(rows.length, 3);
  assert.is(rows[0].frames, 13); // the 3 given frames are not measured
  const [, , vx, vy] = spec.layouts.get(1)![0];
  for (const r of rows) {
    assert.is(r.colourFidelity, 1);
    assert.is(r.extraObjects, 0);
    assert.is(r.duplicates, 0);
    assert.ok(r.positionError < 0.5, `position error ${r.positionError}`);
    // exact before the first bounce (frame 27); a bounce inside the stride shortens the displacement
    assert.ok(Math.abs(r.speed - Math.hypot(vx, vy)) < (r.second === 0 ? 0.02 : 0.2), `speed ${r.speed} in second ${r.second}`);
    assert.ok(r.backgroundDrift < 8 && r.purity > 0.95);
  }
  assert.is(rows[0].edgeContact, 0); // whole and inside the walls before its first bounce
  assert.ok(checkPromptedMotion(rows).ok);
});

test('an object drawn twice in every frame: one extra copy a frame, still one object', () => {
  const scene = parsePrompt('a red circle bouncing on a dark green background', spec);
  const bg = spec.backgrounds.get('dark green')!;
  const m = new VideoMetrics(scene, spec, 16);
  const here = renderGroundTruth(scene, spec, 0, 16);
  const there = renderGroundTruth(scene, spec, 40, 16);
  here.forEach((f, i) => m.add(pasteObjects(f, there[i], bg)));
  const [r] = m.finish();
  assert.is(r.duplicates, 1);
  assert.is(r.objectCount, 1);
  assert.is(r.extraObjects, 0);
});

test('motion is measured where the object is drawn once: a larger copy coming and going is not speed', () => {
  const scene = parsePrompt('a red circle bouncing on a dark green background', spec);
  const bg = spec.backgrounds.get('dark green')!;
  const red = spec.objects.get('red')!;
  const m = new VideoMetrics(scene, spec, 16);
  for (let f = 0; f < 32; f++) {
    const moving = squareFrame(64, bg, red, 10 + f, 40, 10); // 1 px a frame to the right
    // a larger, still copy far from it in a third of the frames: the largest component jumps to it and back
    m.add(f % 12 >= 4 && f % 12 < 8 ? pasteObjects(moving, squareFrame(64, bg, red, 40, 5, 12), bg) : moving);
  }
  const rows = m.finish();
  assert.ok(rows.every((r) => r.duplicates > 0), 'the copy is counted');
  for (const r of rows) assert.ok(Math.abs(r.speed - 1) < 1e-9, `speed ${r.speed} in second ${r.second}`);
});

test('objects at the edge: the share of detected prompted objects reaching it, over a second', () => {
  const scene = parsePrompt('a red circle bouncing on a dark green background', spec);
  const bg = spec.backgrounds.get('dark green')!;
  const red = spec.objects.get('red')!;
  const m = new VideoMetrics(scene, spec, 16);
  for (let f = 0; f < 16; f++) m.add(squareFrame(64, bg, red, f < 4 ? 0 : 27, 27, 10)); // a quarter of the frames against the left edge
  const [r] = m.finish();
  assert.is(r.colourFidelity, 1);
  assert.is(r.edgeContact, 0.25);
});

test('a video that stops moving fails the present-and-moving check', () => {
  const scene = parsePrompt('a yellow triangle bouncing on a dark blue background', spec);
  const m = new VideoMetrics(scene, spec, 16);
  const [still] = renderGroundTruth(scene, spec, 5, 1);
  for (let i = 0; i < 32; i++) m.add(still);
  const check = checkPromptedMotion(m.finish());
  assert.not.ok(check.ok);
  assert.match(check.reason, /speed 0\.00/);
});

test.run();
