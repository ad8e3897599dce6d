import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { referenceCacheUpdate, referenceScores } from '../../src/engine/reference.js';
import { buildCacheUpdateGraph, buildScoreGraph, SCORE_IO, UPDATE_IO } from '../../src/onnx/cache-graphs.js';
import { cacheRows, relError, tinyDims as dims, wave } from './helpers.js';

const d = dims.dim;
const L = dims.layers;

test('update graph: per-layer gathers are exact, blends are weighted sums, positions pass through', async () => {
  const session = await ort.InferenceSession.create(buildCacheUpdateGraph(dims, 'float32').serialize(), { intraOpNumThreads: 1 });
  const current = cacheRows(5);
  const pending = Array.from({ length: L }, (_, l) => ({ rows: 3, keys: wave(3 * d, 30 + l), values: wave(3 * d, 40 + l) }));
  const rows = 4;
  const terms = 2;
  // layer 0: reverse pick + a blend; layer 1: pending rows first
  const sources = Int32Array.of(...[4, 0, 7, 0, 2, 0, 1, 6], ...[5, 0, 6, 0, 0, 3, 7, 7]);
  const weights = Float32Array.of(...[1, 0, 1, 0, 1, 0, 0.3, 0.7], ...[1, 0, 1, 0, 0.5, 0.5, 0.9, 0.1]);
  const positions = Float32Array.from({ length: L * rows * 3 }, (_, i) => (i * 5) % 11);
  const update = { rows, terms, perLayer: true, sources, weights, positions };
  const feeds: Record<string, ort.Tensor> = {
    [UPDATE_IO.sources]: new ort.Tensor('int64', BigInt64Array.from(sources, BigInt), [L, rows, terms]),
    [UPDATE_IO.weights]: new ort.Tensor('float32', weights, [L, rows, terms]),
    [UPDATE_IO.positions]: new ort.Tensor('float32', positions, [L, rows, 3]),
  };
  for (let i = 0; i < L; i++) {
    feeds[UPDATE_IO.cacheK(i)] = new ort.Tensor('float32', current[i].keys, [5, d]);
    feeds[UPDATE_IO.cacheV(i)] = new ort.Tensor('float32', current[i].values, [5, d]);
    feeds[UPDATE_IO.pendingK(i)] = new ort.Tensor('float32', pending[i].keys, [3, d]);
    feeds[UPDATE_IO.pendingV(i)] = new ort.Tensor('float32', pending[i].values, [3, d]);
  }
  const out = await session.run(feeds);
  const ref = referenceCacheUpdate(dims, current, pending, update);
  for (let i = 0; i < L; i++) {
    const k = out[UPDATE_IO.newK(i)].data as Float32Array;
    const v = out[UPDATE_IO.newV(i)].data as Float32Array;
    // single-term rows are bit-exact copies
    for (const r of [0, 1]) {
      assert.equal(Array.from(k.subarray(r * d, (r + 1) * d)), Array.from(ref[i].keys.subarray(r * d, (r + 1) * d)), `layer ${i} row ${r}`);
    }
    assert.ok(relError(k, ref[i].keys) < 1e-6 && relError(v, ref[i].values) < 1e-6, `layer ${i} blends`);
    assert.equal(Array.from(out[UPDATE_IO.newPos(i)].data as Float32Array), Array.from(ref[i].positions));
  }
  await session.release();
});

test('score graphs = reference: sum of queries, and max over queries from two selections', async () => {
  const cache = cacheRows(9);
  const T = dims.tokensPerFrame;
  const passA = Array.from({ length: L }, (_, l) => wave(3 * T * d, 50 + l)); // 3 frames
  const passB = Array.from({ length: L }, (_, l) => wave(3 * T * d, 60 + l));
  const base: Record<string, ort.Tensor> = {};
  for (let i = 0; i < L; i++) {
    base[SCORE_IO.cacheK(i)] = new ort.Tensor('float32', cache[i].keys, [9, d]);
    base[SCORE_IO.cachePos(i)] = new ort.Tensor('float32', cache[i].positions, [9, 3]);
  }
  // selections: frames [2, 3) of pass A and [0, 2) of pass B
  const selected = (i: number): Float32Array => {
    const out = new Float32Array(3 * T * d);
    out.set(passA[i].subarray(2 * T * d, 3 * T * d), 0);
    out.set(passB[i].subarray(0, 2 * T * d), T * d);
    return out;
  };

  const sumSession = await ort.InferenceSession.create(buildScoreGraph(dims, 'float32', 'sum').serialize());
  const qSum = new Float32Array(L * d);
  for (let i = 0; i < L; i++) {
    const q = selected(i);
    for (let r = 0; r < 3 * T; r++) for (let j = 0; j < d; j++) qSum[i * d + j] += q[r * d + j];
  }
  const sums = (await sumSession.run({ ...base, [SCORE_IO.querySum]: new ort.Tensor('float32', qSum, [L, d]) }))[SCORE_IO.scores];
  assert.equal(sums.dims, [L, 9]);

  const maxSession = await ort.InferenceSession.create(buildScoreGraph(dims, 'float32', 'max', 2).serialize());
  const maxFeeds: Record<string, ort.Tensor> = {
    ...base,
    [SCORE_IO.starts]: new ort.Tensor('int64', BigInt64Array.of(2n * BigInt(T), 0n), [2]),
    [SCORE_IO.ends]: new ort.Tensor('int64', BigInt64Array.of(3n * BigInt(T), 2n * BigInt(T)), [2]),
  };
  for (let i = 0; i < L; i++) {
    maxFeeds[SCORE_IO.queries(0, i)] = new ort.Tensor('float32', passA[i], [3 * T, d]);
    maxFeeds[SCORE_IO.queries(1, i)] = new ort.Tensor('float32', passB[i], [3 * T, d]);
  }
  const maxes = (await maxSession.run(maxFeeds))[SCORE_IO.scores];

  for (let i = 0; i < L; i++) {
    const refSum = referenceScores(dims, cache[i], selected(i), 'sum');
    const refMax = referenceScores(dims, cache[i], selected(i), 'max');
    assert.ok(relError((sums.data as Float32Array).subarray(i * 9, (i + 1) * 9), refSum) < 1e-5, `layer ${i} sum`);
    assert.ok(relError((maxes.data as Float32Array).subarray(i * 9, (i + 1) * 9), refMax) < 1e-5, `layer ${i} max`);
  }
  await sumSession.release();
  await maxSession.release();
});

test.run();
