import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { modelDims, ropeFrequencies, wanRopeSplit } from '../../src/model/dims.js';
import {
  referenceCacheUpdate,
  referenceForward,
  referenceScores,
  referenceTextKv,
  ropeAngles,
  ropeRotate,
  timestepSinusoid,
  type ReferenceCacheLayer,
} from '../../src/engine/reference.js';
import { syntheticWeights } from '../../src/model/synthetic.js';

const close = (a: number, b: number, tol = 1e-12): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

// one head of 6 dims = 3 pairs: pair 0 turns with the frame, pair 1 with the row, pair 2 with the column
const tiny = { heads: 1, headDim: 6, ropeSplit: [1, 1, 1] as [number, number, number], ropeTheta: 10000 };

test('RoPE rotates ADJACENT pairs (2j, 2j+1), each part by its own position', () => {
  const e0 = [1, 0, 0, 0, 0, 0];
  const out = ropeRotate(tiny, e0, [2, 0, 0]);
  assert.ok(close(out[0], Math.cos(2)) && close(out[1], Math.sin(2)), 'pair 0 = (cos 2, sin 2)');
  for (let i = 2; i < 6; i++) assert.is(out[i], 0);
  // element 1 is the imaginary part of pair 0: (0, 1) -> (-sin, cos)
  const e1 = ropeRotate(tiny, [0, 1, 0, 0, 0, 0], [2, 0, 0]);
  assert.ok(close(e1[0], -Math.sin(2)) && close(e1[1], Math.cos(2)));
  // a row position turns pair 1 only (elements 2, 3), a column position pair 2 only
  const row = ropeRotate(tiny, [1, 0, 1, 0, 1, 0], [0, 3, 0]);
  assert.equal(Array.from(row).map((v) => +v.toFixed(12)), [1, 0, +Math.cos(3).toFixed(12), +Math.sin(3).toFixed(12), 1, 0]);
  const col = ropeRotate(tiny, [1, 0, 1, 0, 1, 0], [0, 0, 5]);
  assert.ok(close(col[4], Math.cos(5)) && close(col[5], Math.sin(5)) && col[2] === 1 && col[3] === 0);
});

test("Wan's 128-dim head: pairs split [22, 21, 21], w_j = 10000^(-2j/part_dim)", () => {
  assert.equal(wanRopeSplit(128), [22, 21, 21]);
  const dims = { ropeSplit: wanRopeSplit(128), ropeTheta: 10000 };
  const angles = ropeAngles(dims, [1, 1, 1]);
  assert.is(angles.length, 64);
  assert.ok(close(angles[1], Math.pow(10000, -2 / 44)));
  assert.ok(close(angles[22 + 1], Math.pow(10000, -2 / 42)));
  assert.ok(close(angles[43 + 20], Math.pow(10000, -40 / 42)));
});

test('moving a key by delta frames = multiplying its frame pairs by exp(i delta w_j)', () => {
  const dims = { heads: 2, headDim: 12, ropeSplit: wanRopeSplit(12), ropeTheta: 10000 };
  const k = Array.from({ length: 24 }, (_, i) => Math.sin(1.7 * i + 0.3));
  const [fr, rw, cl, delta] = [4, 1, 2, 7];
  const at = ropeRotate(dims, k, [fr, rw, cl]);
  const moved = ropeRotate(dims, k, [fr + delta, rw, cl]);
  const w = ropeFrequencies(dims)[0];
  for (let h = 0; h < 2; h++) {
    for (let j = 0; j < 6; j++) {
      const i = h * 12 + 2 * j;
      const [c, s] = j < w.length ? [Math.cos(delta * w[j]), Math.sin(delta * w[j])] : [1, 0];
      assert.ok(close(moved[i], at[i] * c - at[i + 1] * s, 1e-12), `head ${h} pair ${j} re`);
      assert.ok(close(moved[i + 1], at[i] * s + at[i + 1] * c, 1e-12), `head ${h} pair ${j} im`);
    }
  }
});

test('timestep sinusoid is [cos ..., sin ...] with w_i = 10000^(-i/128)', () => {
  const zero = timestepSinusoid(0, 256);
  assert.ok(zero.subarray(0, 128).every((v) => v === 1) && zero.subarray(128).every((v) => v === 0));
  const one = timestepSinusoid(1, 256);
  assert.ok(close(one[0], Math.cos(1)) && close(one[128], Math.sin(1)));
  assert.ok(close(one[1], Math.cos(Math.pow(10000, -1 / 128))) && close(one[129], Math.sin(Math.pow(10000, -1 / 128))));
});

// A tiny model for whole-forward facts.
const config = configSchema.parse({
  model: { arch: { dim: 24, layers: 2, heads: 2, ffnDim: 48, latentChannels: 4, textDim: 8, textLen: 3 }, latentHeight: 4, latentWidth: 4 },
});
const dims = modelDims(config);
const weights = syntheticWeights(dims, 7);
const wave = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.731 + seed) * 0.9);
const crossKv = referenceTextKv(dims, weights, wave(dims.textLen * dims.textDim, 1));
const F = 2;
const latent = wave(dims.latentChannels * F * dims.latentHeight * dims.latentWidth, 2);
const cacheOf = (N: number, frameShift = 0): ReferenceCacheLayer[] =>
  Array.from({ length: dims.layers }, (_, l) => ({
    rows: N,
    keys: wave(N * dims.dim, 10 + l),
    values: wave(N * dims.dim, 20 + l),
    positions: Float32Array.from({ length: N * 3 }, (_, i) => (i % 3 === 0 ? Math.floor(i / 6) + frameShift : (i * 7) % 2)),
  }));

test('attention has no mask over the cache: permuting cached rows (with their positions) changes nothing', () => {
  const cache = cacheOf(5);
  const a = referenceForward(dims, weights, { latent, timesteps: [500, 500], framePositions: [3, 4], crossKv, cache });
  const perm = [3, 0, 4, 2, 1];
  const permuted = cache.map((c) => {
    const d = dims.dim;
    const p = { rows: 5, keys: new Float32Array(5 * d), values: new Float32Array(5 * d), positions: new Float32Array(15) };
    perm.forEach((src, dst) => {
      p.keys.set(c.keys.subarray(src * d, (src + 1) * d), dst * d);
      p.values.set(c.values.subarray(src * d, (src + 1) * d), dst * d);
      p.positions.set(c.positions.subarray(src * 3, src * 3 + 3), dst * 3);
    });
    return p;
  });
  const b = referenceForward(dims, weights, { latent, timesteps: [500, 500], framePositions: [3, 4], crossKv, cache: permuted });
  for (let i = 0; i < a.flow.length; i++) assert.ok(close(a.flow[i], b.flow[i], 1e-9));
});

test('RoPE is relative: shifting every frame position (cache and block) by the same delta changes nothing', () => {
  const a = referenceForward(dims, weights, { latent, timesteps: [750, 600], framePositions: [3, 4], crossKv, cache: cacheOf(4) });
  const b = referenceForward(dims, weights, { latent, timesteps: [750, 600], framePositions: [13, 14], crossKv, cache: cacheOf(4, 10) });
  for (let i = 0; i < a.flow.length; i++) assert.ok(close(a.flow[i], b.flow[i], 1e-9));
  // ...while shifting only the block does change the output
  const c = referenceForward(dims, weights, { latent, timesteps: [750, 600], framePositions: [13, 14], crossKv, cache: cacheOf(4) });
  assert.ok(a.flow.some((v, i) => !close(v, c.flow[i], 1e-6)));
});

test('the clean keys and values a block produces do not depend on the cache it attends to', () => {
  const a = referenceForward(dims, weights, { latent, timesteps: [0, 0], framePositions: [0, 1], crossKv, cache: cacheOf(0) });
  const b = referenceForward(dims, weights, { latent, timesteps: [0, 0], framePositions: [0, 1], crossKv, cache: cacheOf(3) });
  assert.equal(Array.from(a.keys[0]), Array.from(b.keys[0]), 'layer 0 keys only see the block input');
  assert.ok(a.keys[1].some((v, i) => v !== b.keys[1][i]), 'layer 1 keys see layer 0 attention');
});

test('cache update: new row = sum of weight * [current ‖ pending][source], positions from the update', () => {
  const d = dims.dim;
  const current = cacheOf(2);
  const pending = Array.from({ length: dims.layers }, (_, l) => ({ rows: 1, keys: wave(d, 40 + l), values: wave(d, 50 + l) }));
  const out = referenceCacheUpdate(dims, current, pending, {
    rows: 2,
    terms: 2,
    perLayer: false,
    sources: Int32Array.of(1, 0, 0, 2),
    weights: Float32Array.of(1, 0, 0.25, 0.75),
    positions: Float32Array.of(5, 0, 1, 6, 1, 0),
  });
  for (let l = 0; l < dims.layers; l++) {
    assert.equal(Array.from(out[l].keys.subarray(0, d)), Array.from(current[l].keys.subarray(d, 2 * d)));
    for (let i = 0; i < d; i++) {
      assert.ok(close(out[l].values[d + i], 0.25 * current[l].values[i] + 0.75 * pending[l].values[i], 1e-6));
    }
    assert.equal(Array.from(out[l].positions), [5, 0, 1, 6, 1, 0]);
  }
});

test("scores: 'sum' is the summed query's dot product, 'max' the best single query's, / (heads sqrt(headDim))", () => {
  const d = dims.dim;
  const cache = cacheOf(3)[0];
  const queries = wave(2 * d, 60);
  const sum = referenceScores(dims, cache, queries, 'sum');
  const max = referenceScores(dims, cache, queries, 'max');
  const norm = dims.heads * Math.sqrt(dims.headDim);
  for (let j = 0; j < 3; j++) {
    const k = ropeRotate(dims, cache.keys.subarray(j * d, (j + 1) * d), cache.positions.subarray(j * 3, j * 3 + 3));
    const dots = [0, 1].map((r) => queries.subarray(r * d, (r + 1) * d).reduce((s, q, i) => s + q * k[i], 0) / norm);
    assert.ok(close(sum[j], dots[0] + dots[1], 1e-5));
    assert.ok(close(max[j], Math.max(...dots), 1e-5));
  }
});

test.run();
