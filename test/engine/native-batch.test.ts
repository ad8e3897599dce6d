/**
 * The CUDA engine's batched forward (ssn_forward_batch) on the GPU: three streams, each with its own cache length,
 * prompt, positions and timestep, one keeping its block's K/V and one keeping queries, as one call = each stream's
 * forward alone (bf16: the products at another row count may round differently, 1e-2; fp32: 1e-5) and = the float64
 * reference (1e-2 / 1e-4); the kept rows and queries are the stream's own. GPU-only: skipped with a printed reason
 * where the addon does not load.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { createNativeEngine, type NativeEngine } from '../../src/engine/native/native-engine.js';
import type { BatchedForward, Engine } from '../../src/engine/types.js';
import { modelDims } from '../../src/model/dims.js';
import { referenceForward, referenceScores, referenceTextKv, type ReferenceCacheLayer } from '../../src/engine/reference.js';
import { syntheticWeights } from '../../src/model/synthetic.js';
import { testCudaGraphs } from '../helpers/native-graphs.js';
import { nativeGpuUnavailable } from '../helpers/native-gpu.js';
import { cacheLayers, forwardRequest, wave } from './helpers/engine-checks.js';
import { relError } from '../onnx/helpers.js';

const reason = nativeGpuUnavailable();

function defineSuite(label: string, arch: NonNullable<ConfigInput['model']>['arch'], dtype: 'float16' | 'float32'): void {
  const s = suite(`native batched forward, ${dtype === 'float16' ? 'bf16' : 'fp32'} (${label})`);
  const tol = dtype === 'float16' ? 1e-2 : 1e-4;
  const sameTol = dtype === 'float16' ? 1e-2 : 1e-5;
  const model: ConfigInput['model'] = { arch, latentHeight: 8, latentWidth: 12, weights: 'synthetic', syntheticSeed: 9 };
  const config = configSchema.parse({ model, engine: { name: 'native', dtype, cudaGraphs: testCudaGraphs() } });
  const dims = modelDims(config);
  const weights = syntheticWeights(dims, 9);
  const { dim: d, layers, tokensPerFrame: T, latentChannels: C, latentHeight: H, latentWidth: W } = dims;
  const F = 3;
  const size = C * F * H * W;
  const contexts = [0, 1, 2].map((i) => wave(dims.textLen * dims.textDim, 20 + i));
  const engines: Engine[] = [];
  const empty = (): ReferenceCacheLayer[] =>
    Array.from({ length: layers }, () => ({ rows: 0, keys: new Float32Array(0), values: new Float32Array(0), positions: new Float32Array(0) }));

  /** Gives `engine` a cache of `blocks` clean blocks (kept whole, at frames 0, 3, ...). */
  async function fill(engine: Engine, blocks: number, seed: number): Promise<void> {
    for (let b = 0; b < blocks; b++) {
      await engine.forward(forwardRequest(F, wave(size, seed + b), 0, [3 * b, 3 * b + 1, 3 * b + 2], true));
      const rows = (b + 1) * F * T;
      const cache = await cacheLayers(engine, layers, d);
      const positions = new Float32Array(rows * 3);
      positions.set(cache[0].positions);
      for (let r = b * F * T; r < rows; r++) {
        const inBlock = r - b * F * T;
        positions.set([3 * b + Math.floor(inBlock / T), Math.floor((inBlock % T) / dims.gridWidth), (inBlock % T) % dims.gridWidth], r * 3);
      }
      await engine.updateCache({ rows, terms: 1, perLayer: false, sources: Int32Array.from({ length: rows }, (_, r) => r), weights: new Float32Array(rows).fill(1), positions });
    }
  }

  s.before(async () => {
    for (let i = 0; i < 3; i++) {
      const e = await createNativeEngine({ config });
      await e.setPrompt(contexts[i]);
      engines.push(e);
    }
    await fill(engines[1], 1, 40);
    await fill(engines[2], 2, 50);
  });
  s.after(async () => {
    for (const e of engines) await e.close();
  });

  s('three streams (0, 1 and 2 cached blocks; own prompts, timesteps, positions) in one call = each alone = the reference', async () => {
    assert.ok(engines[0].batchKey !== undefined && engines[0].batchKey === engines[2].batchKey, 'engines of one weight set share a batch key');
    const caches = [await cacheLayers(engines[0], layers, d), await cacheLayers(engines[1], layers, d), await cacheLayers(engines[2], layers, d)];
    const items: BatchedForward[] = [
      { engine: engines[0], request: forwardRequest(F, wave(size, 1), 1000, [0, 1, 2], false) },
      { engine: engines[1], request: forwardRequest(F, wave(size, 2), 750, [3, 4, 5], false, 'max') },
      { engine: engines[2], request: forwardRequest(F, wave(size, 3), 250, [6, 7, 8], true) },
    ];
    const together = await engines[0].forwardBatch!(items);
    assert.is(engines[2].info().pendingRows, F * T, 'the third stream kept its block rows');
    assert.is(engines[0].info().pendingRows, 0);
    const ts = [1000, 750, 250];
    const refs = items.map((it, i) =>
      referenceForward(dims, weights, {
        latent: it.request.latent,
        timesteps: [ts[i], ts[i], ts[i]],
        framePositions: Array.from(it.request.framePositions),
        crossKv: referenceTextKv(dims, weights, contexts[i]),
        cache: caches[i],
      }),
    );
    for (let i = 0; i < 3; i++) {
      const err = relError(together[i].flow, refs[i].flow);
      console.log(`  ${label} ${dtype}: stream ${i} (${caches[i][0].rows} cached rows) batched vs float64 ${err.toExponential(2)}`);
      assert.ok(err < tol, `stream ${i}: batched vs reference ${err}`);
    }
    // the kept queries are the second stream's own
    const rows = caches[1][0].rows;
    const scores = await engines[1].scoreCache([{ queriesId: together[1].queriesId!, frames: [0, 3] }], 'sum');
    for (let l = 0; l < layers; l++) {
      const e = relError(scores.subarray(l * rows, (l + 1) * rows), referenceScores(dims, caches[1][l], refs[1].queries[l], 'sum'));
      assert.ok(e < 3 * tol, `layer ${l} scores of the batched pass's queries ${e}`);
    }
    await engines[1].releaseQueries(together[1].queriesId!);
    // the same forwards one by one (their cache effects are the same: the third's block rows are kept again)
    for (let i = 0; i < 3; i++) {
      const alone = await engines[i].forward(items[i].request);
      const err = relError(together[i].flow, alone.flow);
      console.log(`  ${label} ${dtype}: stream ${i} batched vs alone ${err.toExponential(2)}`);
      assert.ok(err <= sameTol, `stream ${i}: batched vs alone ${err}`);
      if (alone.queriesId !== undefined) await engines[i].releaseQueries(alone.queriesId);
    }
  });

  // The first runs launch directly (the first builds plans and grows workspaces, so the second sees other buffers);
  // once the buffers settle the batch is captured and then replayed.
  s('a batch repeated is captured as one CUDA graph and replayed, with the flows of its first, direct run', async () => {
    const graphed: NativeEngine[] = [];
    const graphsOn = configSchema.parse({ model, engine: { ...config.engine, cudaGraphs: 'on' } });
    try {
      for (let i = 0; i < 2; i++) {
        const e = (await createNativeEngine({ config: graphsOn })) as NativeEngine;
        await e.setPrompt(contexts[i]);
        graphed.push(e);
      }
      await fill(graphed[1], 1, 60);
      const items: BatchedForward[] = [
        { engine: graphed[0], request: forwardRequest(F, wave(size, 7), 1000, [0, 1, 2], false) },
        { engine: graphed[1], request: forwardRequest(F, wave(size, 8), 500, [3, 4, 5], false) },
      ];
      const first = await graphed[0].forwardBatch!(items);
      const before = await graphed[0].forwardStats();
      const runs = 4;
      for (let run = 0; run < runs; run++) {
        const again = await graphed[0].forwardBatch!(items);
        for (let i = 0; i < 2; i++) assert.equal(again[i].flow, first[i].flow, `run ${run + 2}, stream ${i}: the same flow`);
      }
      const after = await graphed[0].forwardStats();
      const captured = after.graphCaptures - before.graphCaptures;
      const launched = after.graphLaunches - before.graphLaunches;
      console.log(`  ${label} ${dtype}: batch of 2, ${captured} captured, ${launched} graph launches of ${runs} runs after the first`);
      assert.is(after.graphFallback, 0, 'no capture failed');
      assert.is(captured, 1, 'the batch was captured once');
      assert.ok(launched >= runs - 1, `replayed from its capture on (${launched} launches)`);
    } finally {
      for (const e of graphed) await e.close();
    }
  });

  s('a batch whose engines do not share one weight set, or holds one engine twice, is refused (ERR_ENGINE) and changes nothing', async () => {
    const other = await createNativeEngine({ config: configSchema.parse({ model: { ...model, syntheticSeed: 10 }, engine: config.engine }) });
    try {
      await other.setPrompt(contexts[0]);
      const r = forwardRequest(F, wave(size, 5), 500, [0, 1, 2], false);
      for (const bad of [
        [{ engine: engines[0], request: r }, { engine: other, request: r }],
        [{ engine: engines[0], request: r }, { engine: engines[0], request: r }],
      ]) {
        try {
          await engines[0].forwardBatch!(bad);
          assert.unreachable('refused');
        } catch (e) {
          assert.is((e as { code?: string }).code, 'ERR_ENGINE');
        }
      }
      assert.is(engines[0].info().pendingRows, 0);
    } finally {
      await other.close();
    }
  });

  s.run();
}

if (reason) {
  console.log(`native batched forward: skipped (${reason})`);
} else {
  defineSuite('head_dim 128', { dim: 256, layers: 2, heads: 2, ffnDim: 512, latentChannels: 16, textDim: 64, textLen: 32 }, 'float16');
  defineSuite('head_dim 64', { dim: 128, layers: 2, heads: 2, ffnDim: 256, latentChannels: 8, textDim: 32, textLen: 8 }, 'float16');
  defineSuite('head_dim 16', { dim: 32, layers: 2, heads: 2, ffnDim: 64, latentChannels: 4, textDim: 8, textLen: 5 }, 'float32');
}
