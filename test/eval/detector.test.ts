/** The detector on exactly rendered ground-truth frames and on frames with nothing to find. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectFrame } from '../../src/eval/detector.js';
import { objectStates, renderGroundTruth } from '../../src/scene/ground-truth.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';
import { pasteObjects, squareFrame } from '../helpers/frames.js';

const spec = loadSceneSpec();
const prompt = 'a white square, a magenta circle and a cyan triangle bouncing on a black background';
const scene = parsePrompt(prompt, spec);

test('finds every prompted object of a ground-truth frame at its centroid, and nothing else', () => {
  let checked = 0;
  for (let frame = 0; frame < 600; frame += 7) {
    const truth = objectStates(scene, spec, frame);
    const apart = truth.every((a, i) => truth.every((b, j) => i === j || Math.hypot(a.x - b.x, a.y - b.y) > 2.7 * spec.openingRadius));
    if (!apart) continue; // an occluded shape's visible centroid moves
    checked++;
    const [rgb] = renderGroundTruth(scene, spec, frame, 1);
    const det = detectFrame(rgb, spec.frameSize, spec, scene.background, ['white', 'magenta', 'cyan']);
    assert.equal([...det.objects.keys()].sort(), ['cyan', 'magenta', 'white'], `frame ${frame}`);
    scene.objects.forEach((o, k) => {
      const d = det.objects.get(o.colour)!;
      assert.ok(Math.hypot(d.cx - truth[k].x, d.cy - truth[k].y) < 1.5, `${o.colour} at frame ${frame}: ${d.cx},${d.cy} vs ${truth[k].x},${truth[k].y}`);
    });
    assert.ok(det.purity > 0.95, `purity ${det.purity}`);
    const drift = Math.hypot(...det.backgroundMean.map((v, i) => v - spec.backgrounds.get('black')![i]));
    assert.ok(drift < 8, `background mean off by ${drift} (anti-aliased edges only)`);
  }
  assert.ok(checked >= 12, `only ${checked} frames without overlap`);
});

test('an object reaching the frame\'s edge is marked atEdge; one a pixel inside it is not', () => {
  const bg = spec.backgrounds.get('dark green')!;
  const red = spec.objects.get('red')!;
  const at = (x0: number, y0: number): boolean | undefined =>
    detectFrame(squareFrame(64, bg, red, x0, y0, 10), 64, spec, 'dark green', ['red']).objects.get('red')?.atEdge;
  assert.is(at(0, 20), true);
  assert.is(at(54, 20), true);
  assert.is(at(20, 0), true);
  assert.is(at(20, 54), true);
  assert.is(at(1, 20), false);
  assert.is(at(53, 53), false);
});

test('an empty background and seeded noise have no objects', () => {
  const bg = spec.backgrounds.get('dark green')!;
  const flat = new Uint8Array(64 * 64 * 3).map((_, i) => bg[i % 3]);
  assert.is(detectFrame(flat, 64, spec, 'dark green', ['red']).objects.size, 0);
  let s = 7;
  const noise = new Uint8Array(64 * 64 * 3).map(() => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24) & 255);
  const det = detectFrame(noise, 64, spec, 'dark green', ['red']);
  assert.is(det.objects.size, 0, [...det.objects.keys()].join());
  assert.ok(det.purity < 0.2);
});

test('an object drawn twice counts as one object with two copies; a speck under the minimum area is no copy', () => {
  const single = parsePrompt('a red circle bouncing on a dark green background', spec);
  const bg = spec.backgrounds.get('dark green')!;
  const [here] = renderGroundTruth(single, spec, 0, 1);
  const [there] = renderGroundTruth(single, spec, 40, 1);
  const twice = pasteObjects(here, there, bg);
  const one = detectFrame(here, spec.frameSize, spec, 'dark green', ['red']).objects.get('red')!;
  const two = detectFrame(twice, spec.frameSize, spec, 'dark green', ['red']).objects.get('red')!;
  assert.is(one.copies, 1);
  assert.is(two.copies, 2, 'the two positions do not touch');
  const speck = here.slice();
  const red = spec.objects.get('red')!;
  for (const p of [0, 1, spec.frameSize, spec.frameSize + 1]) speck.set(red, p * 3); // 4 px in the corner
  assert.is(detectFrame(speck, spec.frameSize, spec, 'dark green', ['red']).objects.get('red')!.copies, 1);
});

test("an object's parts: each copy's centroid and area, largest first, the object's own component first", () => {
  const bg = spec.backgrounds.get('dark green')!;
  const red = spec.objects.get('red')!;
  const frame = pasteObjects(squareFrame(64, bg, red, 4, 4, 5), squareFrame(64, bg, red, 40, 30, 8), bg);
  frame.set(red, (63 * 64 + 63) * 3); // a 1 px speck is no part
  const o = detectFrame(frame, spec.frameSize, spec, 'dark green', ['red']).objects.get('red')!;
  assert.equal(o.parts, [{ cx: 44, cy: 34, area: 64 }, { cx: 6.5, cy: 6.5, area: 25 }]);
  assert.equal([o.cx, o.cy, o.area], [44, 34, 64]);
});

test('prompts outside the training grammar are refused with the grammar', () => {
  assert.throws(() => parsePrompt('a red circle', spec), /training grammar/);
  assert.equal(parsePrompt('a red circle and a blue square bouncing on a dark green background', spec).objects, [
    { colour: 'red', shape: 'circle' },
    { colour: 'blue', shape: 'square' },
  ]);
});

test.run();
