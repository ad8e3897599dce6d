import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { warpTimesteps, warpSigma, warpedSigmas, stepsForCount, stepsFromNoise } from '../../src/loop/timesteps.js';

test('shift 5 warps [1000, 750, 500, 250] to [1000, 937.5, 833.3, 625] (docs/model.md)', () => {
  const warped = warpTimesteps([1000, 750, 500, 250], 5);
  const expected = [1000, 937.5, 833.3333333, 625];
  warped.forEach((t, i) => assert.ok(Math.abs(t - expected[i]) < 1e-6, `${t} vs ${expected[i]}`));
});

test("the sampler's sigmas are the warped timesteps on the 0..1 scale", () => {
  const sigmas = warpedSigmas([1000, 750, 500, 250], 5);
  const expected = [1, 0.9375, 0.8333333, 0.625];
  sigmas.forEach((s, i) => assert.ok(Math.abs(s - expected[i]) < 1e-6, `${s} vs ${expected[i]}`));
});

test('shift 1 is the identity and the warp is monotone', () => {
  assert.equal(warpTimesteps([900, 10], 1), [900, 10]);
  let prev = -1;
  for (let s = 0; s <= 1; s += 0.05) {
    const w = warpSigma(s, 3);
    assert.ok(w >= prev);
    prev = w;
  }
  assert.is(warpSigma(0, 5), 0);
  assert.is(warpSigma(1, 5), 1);
});

test('the quality ladder: 4 steps is the configured list, fewer are evenly spaced from 1000', () => {
  assert.equal(stepsForCount([1000, 750, 500, 250], 4), [1000, 750, 500, 250]);
  assert.equal(stepsForCount([1000, 750, 500, 250], 2), [1000, 500]);
  assert.equal(stepsForCount([1000, 750, 500, 250], 1), [1000]);
  const three = stepsForCount([1000, 750, 500, 250], 3);
  assert.ok(Math.abs(three[1] - 666.6667) < 1e-3 && Math.abs(three[2] - 333.3333) < 1e-3);
  assert.throws(() => stepsForCount([1000], 0));
});

test('a list that starts below 1000 (a block started from its previous frame) keeps its start on the ladder', () => {
  assert.equal(stepsForCount([600, 450, 300, 150], 2), [600, 300]);
  assert.ok(stepsForCount([600, 450, 300, 150], 3).every((t, i) => Math.abs(t - [600, 400, 200][i]) < 1e-9));
  assert.equal(stepsFromNoise(4), [1000, 750, 500, 250]);
});

test.run();
