/**
 * The samplers' in-place arithmetic (src/loop/sampler.ts) gives, to the bit, what the loop computed with a new
 * float32 array for every x0 and x: x0 = x - s v; re-noise x' = (1 - s') x0 + s' n; Euler x' = x + (s' - s) v; and a
 * sample-predicting model's x0 becomes the flow (x - x0) / max(s, 0.05).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SAMPLE_SIGMA_FLOOR, denoisedInto, eulerInPlace, flowOfSampleInPlace, renoiseInPlace } from '../../src/loop/sampler.js';
import { fillGaussianNoise, gaussianNoise } from '../../src/loop/noise.js';

const N = 50001;
const x = gaussianNoise(N, 1, 1);
const v = gaussianNoise(N, 2, 2).map((a) => 0.7 * a + 0.1);
const noise = gaussianNoise(N, 3, 3);
const [sigma, next] = [0.9375, 0.8333333333333334];

/** Bits of a float32 array, for exact comparison (NaN-safe, -0 distinct). */
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function twoArrays(): { x0: Float32Array; renoised: Float32Array; euler: Float32Array } {
  const x0 = new Float32Array(N);
  for (let i = 0; i < N; i++) x0[i] = x[i] - sigma * v[i];
  const renoised = new Float32Array(N);
  for (let i = 0; i < N; i++) renoised[i] = (1 - next) * x0[i] + next * noise[i];
  const euler = new Float32Array(N);
  for (let i = 0; i < N; i++) euler[i] = x[i] + (next - sigma) * v[i];
  return { x0, renoised, euler };
}

test('denoisedInto, renoiseInPlace and eulerInPlace equal the two-array float32 arithmetic bit for bit', () => {
  const want = twoArrays();
  assert.equal(bits(denoisedInto(new Float32Array(N), x, v, sigma)), bits(want.x0));
  const r = x.slice();
  renoiseInPlace(r, v, noise, sigma, next);
  assert.equal(bits(r), bits(want.renoised));
  const e = x.slice();
  eulerInPlace(e, v, sigma, next);
  assert.equal(bits(e), bits(want.euler));
});

test('re-noising rounds x0 to float32 first: in double precision it would differ', () => {
  const want = twoArrays().renoised;
  const unrounded = new Float32Array(N);
  for (let i = 0; i < N; i++) unrounded[i] = (1 - next) * (x[i] - sigma * v[i]) + next * noise[i];
  assert.not.equal(bits(unrounded), bits(want), 'the data tells the two apart');
});

test('flowOfSampleInPlace: v = (x - x0) / sigma in place, whose x - sigma v gives x0 back', () => {
  const x0 = v.slice();
  const out = x0.slice();
  assert.is(flowOfSampleInPlace(out, x, sigma), out, 'the array it is given');
  const want = new Float32Array(N);
  for (let i = 0; i < N; i++) want[i] = (x[i] - x0[i]) / sigma;
  assert.equal(bits(out), bits(want));
  const back = denoisedInto(new Float32Array(N), x, out, sigma);
  for (let i = 0; i < N; i++) assert.ok(Math.abs(back[i] - x0[i]) <= 1e-5 * (1 + Math.abs(x0[i])), `element ${i}: ${back[i]} vs ${x0[i]}`);
});

test('flowOfSampleInPlace divides by the floor below it (as the training did): x - sigma v is then only part way to x0', () => {
  assert.is(SAMPLE_SIGMA_FLOOR, 0.05);
  const xs = Float32Array.from([1, -2, 0.5, 0]);
  const x0 = Float32Array.from([0.25, 1, 0.5, -3]);
  for (const s of [0.02, 0, 0.05]) {
    const out = flowOfSampleInPlace(x0.slice(), xs, s);
    const want = Float32Array.from(xs, (a, i) => (a - x0[i]) / SAMPLE_SIGMA_FLOOR);
    assert.equal(bits(out), bits(want), `sigma ${s}: divided by the floor`);
    assert.ok(out.every(Number.isFinite), `sigma ${s}: finite`);
  }
  // At sigma 0.02: x - 0.02 (x - x0) / 0.05 = 0.6 x + 0.4 x0.
  const back = denoisedInto(new Float32Array(4), xs, flowOfSampleInPlace(x0.slice(), xs, 0.02), 0.02);
  back.forEach((b, i) => assert.ok(Math.abs(b - (0.6 * xs[i] + 0.4 * x0[i])) < 1e-6, `element ${i}: ${b}`));
});

test('fillGaussianNoise writes gaussianNoise into the array it is given', () => {
  const out = new Float32Array(1001).fill(Number.NaN);
  assert.is(fillGaussianNoise(out, 7, 3, 1), out);
  assert.equal(bits(out), bits(gaussianNoise(1001, 7, 3, 1)));
});

test.run();
