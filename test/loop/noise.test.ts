import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gaussianNoise } from '../../src/loop/noise.js';

test('same seed and stream give the same noise; another stream differs', () => {
  const a = gaussianNoise(1001, 7, 3, 1);
  const b = gaussianNoise(1001, 7, 3, 1);
  const c = gaussianNoise(1001, 7, 3, 2);
  const d = gaussianNoise(1001, 8, 3, 1);
  assert.equal(Array.from(a), Array.from(b));
  assert.not.equal(Array.from(a), Array.from(c));
  assert.not.equal(Array.from(a), Array.from(d));
});

test('noise is standard normal: mean ~0, variance ~1', () => {
  const n = 200000;
  const x = gaussianNoise(n, 1, 0);
  let sum = 0;
  let sq = 0;
  for (const v of x) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / n;
  const variance = sq / n - mean * mean;
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
});

test.run();
