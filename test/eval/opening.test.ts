/** The opening check: every prompted colour present in the first measured second of video. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VideoMetrics } from '../../src/eval/metrics.js';
import { renderGroundTruth } from '../../src/scene/ground-truth.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';

const spec = loadSceneSpec();
const fps = 16;
const scene = parsePrompt('a red circle and a blue square bouncing on a dark green background', spec);
const truth = renderGroundTruth(scene, spec, 0, 2 * fps);
const bg = spec.backgrounds.get('dark green')!;
const empty = new Uint8Array(spec.frameSize * spec.frameSize * 3).map((_, i) => bg[i % 3]);

/** The ground truth with the red object painted over by background in the given frames. */
function withoutRed(frame: Uint8Array): Uint8Array {
  const red = spec.objects.get('red')!;
  const out = Uint8Array.from(frame);
  for (let p = 0; p < out.length; p += 3) {
    if (Math.hypot(out[p] - red[0], out[p + 1] - red[1], out[p + 2] - red[2]) < 120) out.set(bg, p);
  }
  return out;
}

function opening(frames: Uint8Array[], skip = 0) {
  const m = new VideoMetrics(scene, spec, fps, skip);
  for (const f of frames) m.add(f);
  return m.opening();
}

test('the ground truth opens with every prompted colour present', () => {
  const o = opening(truth);
  assert.ok(o.present);
  assert.is(o.fromFrame, 0);
  assert.is(o.frames, fps);
  assert.equal(o.colourShares, { red: 1, blue: 1 });
});

test('a colour missing from most of the first second fails it, whatever comes later', () => {
  const frames = truth.map((f, i) => (i < 9 ? withoutRed(f) : f));
  const o = opening(frames);
  assert.not.ok(o.present);
  assert.is(o.colourShares.blue, 1);
  assert.is(o.colourShares.red, 7 / 16);
  // missing in half of the second (8 of 16 frames) still counts as present
  assert.ok(opening(truth.map((f, i) => (i < 8 ? withoutRed(f) : f))).present);
});

test('an empty video has no opening; only the first second is checked', () => {
  assert.not.ok(opening(Array.from({ length: 2 * fps }, () => empty)).present);
  assert.ok(opening([...truth.slice(0, fps), ...Array.from({ length: fps }, () => empty)]).present);
});

test('primed: the check starts at the first generated frame, after the given ones', () => {
  // 3 given frames (here blank), then a generated second with both objects
  const frames = [empty, empty, empty, ...truth.slice(0, fps)];
  const o = opening(frames, 3);
  assert.is(o.fromFrame, 3);
  assert.is(o.frames, fps);
  assert.ok(o.present);
  // the same frames unprimed: frames 0..15 hold 3 blanks and 13 frames with objects
  assert.equal(opening(frames).colourShares, { red: 13 / 16, blue: 13 / 16 });
});

test.run();
