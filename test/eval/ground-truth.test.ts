/** The closed-form bouncing trajectory equals stepping the motion frame by frame. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { objectStates } from '../../src/scene/ground-truth.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';

const spec = loadSceneSpec();

test('closed form = frame-by-frame reflection off the walls, for 2000 frames', () => {
  const scene = parsePrompt('a white square, a magenta circle and a cyan triangle bouncing on a black background', spec);
  const r = spec.openingRadius;
  const hi = spec.frameSize - r;
  const sim = spec.layouts.get(3)!.map(([x, y, vx, vy]) => ({ x, y, vx, vy }));
  for (let f = 0; f < 2000; f++) {
    const closed = objectStates(scene, spec, f);
    sim.forEach((o, k) => {
      assert.ok(Math.abs(closed[k].x - o.x) < 1e-6 && Math.abs(closed[k].y - o.y) < 1e-6, `object ${k} frame ${f}`);
      assert.ok(closed[k].x >= r - 1e-9 && closed[k].x <= hi + 1e-9);
    });
    for (const o of sim) {
      o.x += o.vx;
      o.y += o.vy;
      if (o.x > hi) { o.x = 2 * hi - o.x; o.vx = -o.vx; }
      if (o.x < r) { o.x = 2 * r - o.x; o.vx = -o.vx; }
      if (o.y > hi) { o.y = 2 * hi - o.y; o.vy = -o.vy; }
      if (o.y < r) { o.y = 2 * r - o.y; o.vy = -o.vy; }
    }
  }
});

test.run();
