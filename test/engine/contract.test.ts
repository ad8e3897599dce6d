/**
 * The engine contract (src/engine/types.ts), one suite run against every engine available here:
 * ORT on the CPU always; ORT on WebGPU and the native CUDA engine where they load (skipped with a
 * printed reason elsewhere). The truth is the plain-TypeScript reference model.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import type { CacheUpdate, Engine } from '../../src/engine/types.js';
import { isSinkstreamError } from '../../src/errors.js';
import { modelDims } from '../../src/model/dims.js';
import {
  referenceForward,
  referenceScores,
  referenceTextKv,
  type ReferenceCacheLayer,
  type ReferenceForwardOutput,
} from '../../src/engine/reference.js';
import { syntheticWeights } from '../../src/model/synthetic.js';
import { testCudaGraphs } from '../helpers/native-graphs.js';
import { rejectsWith } from '../helpers/assertions.js';
import { cacheLayers, forwardRequest, wave } from './helpers/engine-checks.js';
import { relError } from '../onnx/helpers.js';
import { canBatch, forwardTogether } from '../../src/engine/batch.js';

const SEED = 11;
const model: ConfigInput['model'] = {
  arch: { dim: 32, layers: 2, heads: 2, ffnDim: 64, latentChannels: 4, textDim: 8, textLen: 5 },
  latentHeight: 4,
  latentWidth: 6,
  weights: 'synthetic',
  syntheticSeed: SEED,
};

interface Candidate {
  label: string;
  engine: ConfigInput['engine'];
  /** Relative error allowed against the float64 reference. */
  tolerance: number;
}

const candidates: Candidate[] = [
  { label: 'ort-cpu', engine: { name: 'ort', provider: 'cpu', threads: 2 }, tolerance: 1e-4 },
  { label: 'ort-webgpu', engine: { name: 'ort', provider: 'webgpu', dtype: 'float32' }, tolerance: 2e-3 },
  { label: 'ort-webgpu-host-cache', engine: { name: 'ort', provider: 'webgpu', dtype: 'float32', residentCache: false }, tolerance: 2e-3 },
  { label: 'ort-cpu-pipeline', engine: { name: 'ort', provider: 'cpu', threads: 1, stages: 2 }, tolerance: 1e-4 },
  // engine.cudaGraphs from SINKSTREAM_TEST_CUDA_GRAPHS (the GPU run goes through the suite with graphs off and on)
  { label: 'native', engine: { name: 'native', cudaGraphs: testCudaGraphs() }, tolerance: 2e-3 },
  // two stages, both on GPU 0 (every machine with the addon has one): the pipeline engine's hand-over and its
  // per-stage scores and cache reads, through the same contract
  { label: 'native-pipeline', engine: { name: 'native', stages: 2, devices: [0, 0], cudaGraphs: testCudaGraphs() }, tolerance: 2e-3 },
];


function defineSuite(candidate: Candidate, engine: Engine): ReturnType<typeof suite> {
  const config = configSchema.parse({ model, engine: candidate.engine });
  const dims = modelDims(config);
  const weights = syntheticWeights(dims, SEED);
  const { dim: d, layers, tokensPerFrame: T, latentChannels: C, latentHeight: H, latentWidth: W } = dims;
  const F = 3;
  const tol = candidate.tolerance;
  const context = wave(dims.textLen * dims.textDim, 1);
  const crossKv = referenceTextKv(dims, weights, context);
  const latents = [0, 1, 2, 3].map((s) => wave(C * F * H * W, 100 + s));
  const emptyCache = (): ReferenceCacheLayer[] =>
    Array.from({ length: layers }, () => ({ rows: 0, keys: new Float32Array(0), values: new Float32Array(0), positions: new Float32Array(0) }));
  const ref = (latent: Float32Array, timesteps: number[], framePositions: number[], cache: ReferenceCacheLayer[]): ReferenceForwardOutput =>
    referenceForward(dims, weights, { latent, timesteps, framePositions, crossKv, cache });
  const request = (latent: Float32Array, t: number, positions: number[], keepBlockKv: boolean, keepQueries: 'none' | 'sum' | 'max' = 'none') =>
    forwardRequest(F, latent, t, positions, keepBlockKv, keepQueries);
  /** The engine's cache as reference layers. */
  const readLayers = (): Promise<ReferenceCacheLayer[]> => cacheLayers(engine, layers, d);

  const s = suite(`engine contract: ${candidate.label}`);
  let clean0: ReferenceForwardOutput;

  s.before(async () => {
    await engine.setPrompt(context);
  });

  s('forward is deterministic and equals the reference with an empty cache', async () => {
    await engine.resetCache();
    const a = await engine.forward(request(latents[0], 937.5, [0, 1, 2], false));
    const b = await engine.forward(request(latents[0], 937.5, [0, 1, 2], false));
    assert.ok(relError(a.flow, b.flow) < 1e-7, 'same request, same flow');
    const err = relError(a.flow, ref(latents[0], [937.5, 937.5, 937.5], [0, 1, 2], emptyCache()).flow);
    assert.ok(err < tol, `flow relative error ${err}`);
    assert.is(engine.info().pendingRows, 0, 'keepBlockKv false keeps nothing');
  });

  s('clean pass + updateCache, then forward = reference with that cache (re-placed positions)', async () => {
    await engine.resetCache();
    const clean = await engine.forward(request(latents[0], 0, [0, 1, 2], true));
    clean0 = ref(latents[0], [0, 0, 0], [0, 1, 2], emptyCache());
    assert.ok(relError(clean.flow, clean0.flow) < tol);
    assert.is(engine.info().pendingRows, F * T);

    // keep frames 1 and 2 of the block, re-placed at frames 5 and 6
    const rows = 2 * T;
    const positions = new Float32Array(rows * 3);
    for (let r = 0; r < rows; r++) positions.set([5 + Math.floor(r / T), Math.floor((r % T) / dims.gridWidth), (r % T) % dims.gridWidth], r * 3);
    await engine.updateCache({
      rows,
      terms: 1,
      perLayer: false,
      sources: Int32Array.from({ length: rows }, (_, r) => T + r),
      weights: new Float32Array(rows).fill(1),
      positions,
    });
    assert.equal(engine.info(), { ...engine.info(), cacheRows: rows, pendingRows: 0 });

    const cache = Array.from({ length: layers }, (_, l) => ({
      rows,
      keys: clean0.keys[l].slice(T * d),
      values: clean0.values[l].slice(T * d),
      positions,
    }));
    const out = await engine.forward(request(latents[1], 750, [7, 8, 9], false));
    const err = relError(out.flow, ref(latents[1], [750, 750, 750], [7, 8, 9], cache).flow);
    assert.ok(err < tol, `flow relative error with a ${rows}-row cache: ${err}`);
  });

  s('updateCache: per-layer gathers copy rows exactly, blends are weighted sums, positions are taken as given', async () => {
    const before = await readLayers();
    const N = before[0].rows;
    await engine.forward(request(latents[2], 0, [7, 8, 9], true)); // pending: 3T rows
    const P = F * T;
    // layer l: [current rows, reversed (l = 0) or as is (l = 1)] ‖ [pending rows] ‖ [T blends 0.25 cur + 0.75 pending]
    const rows = N + P + T;
    const terms = 2;
    const sources = new Int32Array(layers * rows * terms);
    const weightsU = new Float32Array(layers * rows * terms);
    const positions = Float32Array.from({ length: layers * rows * 3 }, (_, i) => (i * 7) % 13);
    for (let l = 0; l < layers; l++) {
      for (let r = 0; r < rows; r++) {
        const at = (l * rows + r) * terms;
        if (r < N) [sources[at], weightsU[at]] = [l === 0 ? N - 1 - r : r, 1];
        else if (r < N + P) [sources[at], weightsU[at]] = [r, 1];
        else {
          const j = r - N - P;
          sources.set([j, N + j], at);
          weightsU.set([0.25, 0.75], at);
        }
      }
    }
    const update: CacheUpdate = { rows, terms, perLayer: true, sources, weights: weightsU, positions };
    await engine.updateCache(update);
    assert.is(engine.info().cacheRows, rows);
    assert.is(engine.info().pendingRows, 0);
    const after = await readLayers();
    const exact = tol <= 1e-4 ? 1e-6 : 1e-3;
    for (let l = 0; l < layers; l++) {
      const row = (c: ReferenceCacheLayer, kind: 'keys' | 'values', r: number): Float32Array => c[kind].subarray(r * d, (r + 1) * d);
      for (let r = 0; r < N; r++) {
        const src = l === 0 ? N - 1 - r : r;
        assert.equal(Array.from(row(after[l], 'keys', r)), Array.from(row(before[l], 'keys', src)), `layer ${l} row ${r} key copy`);
        assert.equal(Array.from(row(after[l], 'values', r)), Array.from(row(before[l], 'values', src)), `layer ${l} row ${r} value copy`);
      }
      // the pending rows are this clean pass's keys (not rotated) and values
      const clean = ref(latents[2], [0, 0, 0], [7, 8, 9], before);
      assert.ok(relError(after[l].keys.subarray(N * d, (N + P) * d), clean.keys[l]) < tol, `layer ${l}: pending keys`);
      assert.ok(relError(after[l].values.subarray(N * d, (N + P) * d), clean.values[l]) < tol, `layer ${l}: pending values`);
      for (let j = 0; j < T; j++) {
        for (const kind of ['keys', 'values'] as const) {
          const want = row(before[l], kind, j).map((v, i) => 0.25 * v + 0.75 * row(after[l], kind, N + j)[i]);
          assert.ok(relError(row(after[l], kind, N + P + j), want) < exact, `layer ${l} blend ${j} ${kind}`);
        }
      }
      assert.equal(Array.from(after[l].positions), Array.from(positions.subarray(l * rows * 3, (l + 1) * rows * 3)));
    }
  });

  s('updateCache refuses a source outside [current ‖ pending]', async () => {
    const rows = engine.info().cacheRows;
    await rejectsWith(
      engine.updateCache({ rows: 1, terms: 1, perLayer: false, sources: Int32Array.of(rows + 5), weights: Float32Array.of(1), positions: new Float32Array(3) }),
      'ERR_ENGINE',
    );
    assert.is(engine.info().cacheRows, rows, 'the cache is unchanged');
  });

  s('scoreCache = host computation on the cache read back and the reference queries', async () => {
    const cache = await readLayers();
    const a = await engine.forward(request(latents[3], 900, [10, 11, 12], false, 'max'));
    const b = await engine.forward(request(latents[0], 800, [13, 14, 15], false, 'max'));
    const refA = ref(latents[3], [900, 900, 900], [10, 11, 12], cache);
    const refB = ref(latents[0], [800, 800, 800], [13, 14, 15], cache);
    assert.ok(relError(a.flow, refA.flow) < tol);
    assert.ok(a.queriesId !== undefined && b.queriesId !== undefined);
    const selections = [
      { queriesId: a.queriesId!, frames: [1, 3] as [number, number] },
      { queriesId: b.queriesId!, frames: [0, 1] as [number, number] },
    ];
    const rows = cache[0].rows;
    for (const reduce of ['sum', 'max'] as const) {
      const scores = await engine.scoreCache(selections, reduce);
      assert.is(scores.length, layers * rows);
      for (let l = 0; l < layers; l++) {
        const queries = new Float32Array(3 * T * d);
        queries.set(refA.queries[l].subarray(T * d, 3 * T * d), 0);
        queries.set(refB.queries[l].subarray(0, T * d), 2 * T * d);
        const want = referenceScores(dims, cache[l], queries, reduce);
        const err = relError(scores.subarray(l * rows, (l + 1) * rows), want);
        assert.ok(err < 10 * tol, `layer ${l} '${reduce}' scores relative error ${err}`);
      }
    }
    await engine.releaseQueries(a.queriesId!);
    await rejectsWith(engine.scoreCache([selections[0]], 'sum'), 'ERR_ENGINE');
    await engine.releaseQueries(b.queriesId!);
  });

  s('resetCache empties the cache and the pending rows', async () => {
    await engine.forward(request(latents[1], 0, [3, 4, 5], true));
    await engine.resetCache();
    assert.is(engine.info().cacheRows, 0);
    assert.is(engine.info().pendingRows, 0);
    const c = await engine.readCache();
    assert.is(c.rows, 0);
    assert.is(c.keys.length, 0);
    const out = await engine.forward(request(latents[1], 500, [3, 4, 5], false));
    assert.ok(relError(out.flow, ref(latents[1], [500, 500, 500], [3, 4, 5], emptyCache()).flow) < tol);
  });

  s('streams on engines of their own, forwarded together (one batched call where the engine has one) = each forwarded alone', async () => {
    // two more engines of the same config: their own caches and prompts (the engine under test keeps its state)
    const config = configSchema.parse({ model, engine: candidate.engine });
    const a = await createEngine(config);
    const b = await createEngine(config);
    try {
      await a.setPrompt(context);
      await b.setPrompt(wave(dims.textLen * dims.textDim, 2));
      // a: one block's clean pass kept whole; b: an empty cache
      await a.forward(request(latents[0], 0, [0, 1, 2], true));
      const rows = F * T;
      const positions = new Float32Array(rows * 3);
      for (let r = 0; r < rows; r++) positions.set([Math.floor(r / T), Math.floor((r % T) / dims.gridWidth), (r % T) % dims.gridWidth], r * 3);
      await a.updateCache({ rows, terms: 1, perLayer: false, sources: Int32Array.from({ length: rows }, (_, r) => r), weights: new Float32Array(rows).fill(1), positions });
      const items = [
        { engine: a, request: request(latents[1], 750, [3, 4, 5], false) },
        { engine: b, request: request(latents[2], 500, [0, 1, 2], true) },
      ];
      assert.is(canBatch(items), a.batchKey !== undefined && a.forwardBatch !== undefined, 'batched exactly where the engine offers it');
      const together = await forwardTogether(items);
      assert.is(b.info().pendingRows, F * T, "b's block rows kept");
      const alone = [await a.forward(items[0].request), await b.forward(items[1].request)];
      // the products may be tiled differently at another row count: equal up to fp32 rounding
      for (const i of [0, 1]) {
        const err = relError(together[i].flow, alone[i].flow);
        assert.ok(err <= 1e-5, `stream ${i}: together vs alone, relative error ${err}`);
      }
      const clean = ref(latents[0], [0, 0, 0], [0, 1, 2], emptyCache());
      const cacheA = Array.from({ length: layers }, (_, l) => ({ rows, keys: clean.keys[l], values: clean.values[l], positions }));
      assert.ok(relError(together[0].flow, ref(latents[1], [750, 750, 750], [3, 4, 5], cacheA).flow) < tol, "a's flow attends to a's cache");
      const crossB = referenceTextKv(dims, weights, wave(dims.textLen * dims.textDim, 2));
      const refB = referenceForward(dims, weights, { latent: latents[2], timesteps: [500, 500, 500], framePositions: [0, 1, 2], crossKv: crossB, cache: emptyCache() });
      assert.ok(relError(together[1].flow, refB.flow) < tol, "b's flow is its own prompt's");
    } finally {
      await a.close();
      await b.close();
    }
  });

  s('close is idempotent; calls after close reject with ERR_CLOSED', async () => {
    await engine.close();
    await engine.close();
    await rejectsWith(engine.forward(request(latents[0], 0, [0, 1, 2], false)), 'ERR_CLOSED');
  });

  return s;
}

for (const candidate of candidates) {
  let engine: Engine;
  try {
    engine = await createEngine(configSchema.parse({ model, engine: candidate.engine }));
  } catch (e) {
    if (isSinkstreamError(e) && e.code === 'ERR_ENGINE_UNAVAILABLE') {
      console.log(`engine contract: ${candidate.label} skipped: ${e.message.split('\n')[0]}`);
      continue;
    }
    throw e;
  }
  defineSuite(candidate, engine).run();
}
