/**
 * The CUDA engine's fast path (engine.dtype float16 = bf16 storage, tensor-core products) against the
 * float64 TypeScript reference, at head_dim 128, 64 and 16 with a filled cache (and the fp32 mode at the
 * contract suite's size); cache blends bit-exact
 * against a host computation; the engine's step loop (denoiseSteps) bit-exact against forwards with the generator's
 * sampler. GPU-only: skipped with a printed reason where the addon does not load.
 * (The fp32 mode runs the shared contract suite, test/engine/contract.test.ts.)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { loadNativeAddon } from '../../src/engine/native/addon-loader.js';
import { createNativeEngine, weightsIdentity } from '../../src/engine/native/native-engine.js';
import type { Engine } from '../../src/engine/types.js';
import { modelDims } from '../../src/model/dims.js';
import { referenceForward, referenceScores, referenceTextKv, type ReferenceCacheLayer } from '../../src/engine/reference.js';
import { syntheticWeights } from '../../src/model/synthetic.js';
import { NativeEngine } from '../../src/engine/native/native-engine.js';
import { testCudaGraphs } from '../helpers/native-graphs.js';
import { withEnv } from '../../tools/stand-in/env.js';
import { nativeGpuUnavailable } from '../helpers/native-gpu.js';
import { cacheLayers, forwardRequest, wave } from './helpers/engine-checks.js';
import { relError } from '../onnx/helpers.js';
import { denoisedInto, eulerInPlace, flowOfSampleInPlace, renoiseInPlace, SAMPLE_SIGMA_FLOOR } from '../../src/loop/sampler.js';


const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** fp32 -> bf16 with round-to-nearest-even, as __float2bfloat16. */
function bf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 0) & 0xffff0000;
  return f32[0];
}

const reason = nativeGpuUnavailable();

function defineSuite(
  label: string,
  arch: NonNullable<ConfigInput['model']>['arch'],
  dtype: 'float16' | 'float32' = 'float16',
  stages: Pick<NonNullable<ConfigInput['engine']>, 'stages' | 'devices' | 'attentionKernel'> = {},
): void {
  const s = suite(`native ${dtype === 'float16' ? 'bf16' : 'fp32'} (${label})`);
  const tol = dtype === 'float16' ? 1e-2 : 1e-4;
  const round = dtype === 'float16' ? bf16 : (x: number): number => x;
  const model: ConfigInput['model'] = { arch, latentHeight: 8, latentWidth: 12, weights: 'synthetic', syntheticSeed: 5 };
  const config = configSchema.parse({ model, engine: { name: 'native', dtype, cudaGraphs: testCudaGraphs(), ...stages } });
  const dims = modelDims(config);
  const weights = syntheticWeights(dims, 5);
  const { dim: d, layers, tokensPerFrame: T, latentChannels: C, latentHeight: H, latentWidth: W } = dims;
  const F = 3;
  const context = wave(dims.textLen * dims.textDim, 3);
  const crossKv = referenceTextKv(dims, weights, context);
  let engine: Engine;
  const req = (latent: Float32Array, t: number, pos: number[], keep: boolean, keepQueries: 'none' | 'sum' | 'max' = 'none') =>
    forwardRequest(F, latent, t, pos, keep, keepQueries);
  const layersOf = (): Promise<ReferenceCacheLayer[]> => cacheLayers(engine, layers, d);

  s.before(async () => {
    engine = await createNativeEngine({ config });
    await engine.setPrompt(context);
  });
  s.after(async () => {
    await engine.close();
  });

  s('one block with a filled, re-placed cache is within tolerance of float64 (bf16 1e-2, fp32 1e-4)', async () => {
    const empty = Array.from({ length: layers }, () => ({ rows: 0, keys: new Float32Array(0), values: new Float32Array(0), positions: new Float32Array(0) }));
    await engine.forward(req(wave(C * F * H * W, 1), 0, [0, 1, 2], true));
    const ref0 = referenceForward(dims, weights, { latent: wave(C * F * H * W, 1), timesteps: [0, 0, 0], framePositions: [0, 1, 2], crossKv, cache: empty });
    // keep the block, moved two frames later on the timeline
    const rows = F * T;
    const positions = new Float32Array(rows * 3);
    for (let r = 0; r < rows; r++) positions.set([2 + Math.floor(r / T), Math.floor((r % T) / dims.gridWidth), (r % T) % dims.gridWidth], r * 3);
    await engine.updateCache({ rows, terms: 1, perLayer: false, sources: Int32Array.from({ length: rows }, (_, r) => r), weights: new Float32Array(rows).fill(1), positions });
    const cache = await layersOf();
    for (let l = 0; l < layers; l++) assert.ok(relError(cache[l].keys, ref0.keys[l]) < tol, `layer ${l} cached keys`);
    const latent = wave(C * F * H * W, 2);
    const out = await engine.forward(req(latent, 625, [5, 6, 7], false, 'max'));
    const ref = referenceForward(dims, weights, { latent, timesteps: [625, 625, 625], framePositions: [5, 6, 7], crossKv, cache });
    const err = relError(out.flow, ref.flow);
    console.log(`  ${label}: flow relative error ${err.toExponential(2)} with ${rows} cached rows`);
    assert.ok(err < tol, `flow relative error ${err}`);
    for (const reduce of ['sum', 'max'] as const) {
      const scores = await engine.scoreCache([{ queriesId: out.queriesId!, frames: [1, 3] }], reduce);
      for (let l = 0; l < layers; l++) {
        const want = referenceScores(dims, cache[l], ref.queries[l].subarray(T * d), reduce);
        const e = relError(scores.subarray(l * rows, (l + 1) * rows), want);
        assert.ok(e < 3 * tol, `layer ${l} ${reduce} scores relative error ${e}`);
      }
    }
    await engine.releaseQueries(out.queriesId!);
  });

  s('EMA blends and gathers are bit-exact against the host (fp32 products and sums, one rounding to storage)', async () => {
    const before = await layersOf();
    const N = before[0].rows;
    await engine.forward(req(wave(C * F * H * W, 4), 0, [8, 9, 10], true));
    const alpha = 0.99;
    const rows = N;
    const w = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) w.set([alpha, 1 - alpha], r * 2);
    const pendingPos = new Float32Array(rows * 3).map((_, i) => (i * 5) % 11);
    // make the pending rows readable: an identity gather of [cache || pending], then read everything back
    await engine.updateCache({ rows: N + F * T, terms: 1, perLayer: false, sources: Int32Array.from({ length: N + F * T }, (_, r) => r), weights: new Float32Array(N + F * T).fill(1), positions: new Float32Array((N + F * T) * 3) });
    const all = await layersOf();
    // EMA: row r = alpha * row r + (1 - alpha) * a row of the former pending block
    const keepSources = new Int32Array(rows * 2);
    for (let r = 0; r < rows; r++) keepSources.set([r, N + ((r * 7) % (F * T))], r * 2);
    await engine.updateCache({ rows, terms: 2, perLayer: false, sources: keepSources, weights: w, positions: pendingPos });
    const after = await layersOf();
    for (let l = 0; l < layers; l++) {
      for (const kind of ['keys', 'values'] as const) {
        const src = all[l][kind];
        const got = after[l][kind];
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < d; i++) {
            let acc = 0;
            acc = Math.fround(acc + Math.fround(w[r * 2] * src[keepSources[r * 2] * d + i]));
            acc = Math.fround(acc + Math.fround(w[r * 2 + 1] * src[keepSources[r * 2 + 1] * d + i]));
            if (got[r * d + i] !== round(acc)) assert.unreachable(`layer ${l} ${kind} row ${r} dim ${i}: ${got[r * d + i]} != ${round(acc)}`);
          }
        }
      }
      assert.equal(Array.from(after[l].positions), Array.from(pendingPos));
    }
  });

  s.run();
}

/** Engines of the same weights in one process hold one copy on the GPU (a later stream's engine reads no weights). */
function defineSharingSuite(): void {
  const s = suite('native shared weights');
  const model: ConfigInput['model'] = {
    arch: { dim: 256, layers: 2, heads: 2, ffnDim: 512, latentChannels: 16, textDim: 64, textLen: 32 },
    latentHeight: 8, latentWidth: 12, weights: 'synthetic', syntheticSeed: 5,
  };
  const config = configSchema.parse({ model, engine: { name: 'native', dtype: 'float16' } });
  const dims = modelDims(config);
  const context = wave(dims.textLen * dims.textDim, 3);
  const latent = wave(dims.latentChannels * 3 * dims.latentHeight * dims.latentWidth, 4);
  const request = { latent, timesteps: new Float32Array(3).fill(500), framePositions: Int32Array.from([0, 1, 2]), keepBlockKv: false, keepQueries: 'none' as const };

  s('a second engine of the same weights shares them and computes the same flow; other weights do not share', async () => {
    const { addon } = loadNativeAddon();
    const first = await createNativeEngine({ config });
    const key = weightsIdentity(config);
    const probe = addon.createEngine(dims, 0, 0, key);
    const otherKey = weightsIdentity(configSchema.parse({ model: { ...model, syntheticSeed: 6 }, engine: { name: 'native' } }));
    const other = addon.createEngine(dims, 0, 0, otherKey);
    try {
      assert.ok(addon.weightsShared(probe), 'same weights: shared');
      assert.not.ok(addon.weightsShared(other), 'another seed: not shared');
    } finally {
      addon.destroy(probe);
      addon.destroy(other);
    }
    const second = await createNativeEngine({ config });
    await first.setPrompt(context);
    await second.setPrompt(context);
    const a = (await first.forward(request)).flow;
    const b = (await second.forward(request)).flow;
    assert.equal(Array.from(b), Array.from(a));
    await first.close(); // the weights live on with the engine that still uses them
    const again = (await second.forward(request)).flow;
    assert.equal(Array.from(again), Array.from(a));
    await second.close();
  });

  s.run();
}

/** Whether the addon attends through cuDNN (the tests of cuDNN's paths say they were skipped when not). */
function cudnnAttention(): boolean {
  const backend = loadNativeAddon().addon.attentionBackend();
  if (!backend.startsWith('cuDNN')) console.log(`  skipped: attention is ${backend}`);
  return backend.startsWith('cuDNN');
}

/** Whether GPU 0 is a Hopper GPU, where the own Hopper attention kernel runs (engine.attentionKernel). */
function hopperAttention(): boolean {
  return /H100|H200|H800|H20\b|GH200/.test(loadNativeAddon().probe.names[0] ?? '');
}

/**
 * CUDA graphs (a shape's forwards replayed from a graph captured on its second run) give the flows of direct
 * launches, across cache updates that swap the key/value buffers; cuDNN plans are built once per device and shape
 * for every engine of the process; the C block loop runs whole blocks and keeps the cache's row count.
 */
function defineGraphsSuite(): void {
  const s = suite('native CUDA graphs, shared plans, C block loop');
  const model: ConfigInput['model'] = {
    arch: { dim: 256, layers: 2, heads: 2, ffnDim: 512, latentChannels: 16, textDim: 64, textLen: 32 },
    latentHeight: 8, latentWidth: 12, weights: 'synthetic', syntheticSeed: 7,
  };
  // cuDNN's attention unless a test says otherwise (auto takes the own Hopper kernel on Hopper GPUs at head_dim 128)
  const configWith = (cudaGraphs: 'on' | 'off', attention: 'exact' | 'fp8' = 'exact', dtype: 'float16' | 'fp8' = 'float16',
    attentionKernel: 'cudnn' | 'hopper' = 'cudnn') =>
    configSchema.parse({ model, engine: { name: 'native', dtype, cudaGraphs, attention, attentionKernel } });
  const dims = modelDims(configWith('on'));
  const { tokensPerFrame: T, latentChannels: C, latentHeight: H, latentWidth: W } = dims;
  const F = 3;
  const context = wave(dims.textLen * dims.textDim, 3);
  const request = (seed: number, t: number, keepBlockKv: boolean) => ({
    latent: wave(C * F * H * W, seed), timesteps: new Float32Array(F).fill(t), framePositions: Int32Array.from([4, 5, 6]), keepBlockKv, keepQueries: 'none' as const,
  });
  /** Keeps the newest `keep` rows of [cache || pending]. */
  const keepNewest = (engine: Engine, keep: number) => {
    const { cacheRows, pendingRows } = engine.info();
    const total = cacheRows + pendingRows;
    const rows = Math.min(keep, total);
    const positions = new Float32Array(rows * 3);
    for (let r = 0; r < rows; r++) positions.set([Math.floor(r / T), Math.floor((r % T) / dims.gridWidth), (r % T) % dims.gridWidth], r * 3);
    return engine.updateCache({ rows, terms: 1, perLayer: false, sources: Int32Array.from({ length: rows }, (_, r) => total - rows + r), weights: new Float32Array(rows).fill(1), positions });
  };

  /**
   * Four blocks on the three engines side by side: `fp8`'s flows differ from `exact`'s (else `what` did not run) by
   * less than 10 %, and `fp8Graphed`'s (captured graphs) equal `fp8`'s. Returns the largest difference from exact.
   */
  const nearButNotEqual = async (exact: NativeEngine, fp8: NativeEngine, fp8Graphed: NativeEngine, what: string) => {
    const engines = [exact, fp8, fp8Graphed];
    for (const e of engines) await e.setPrompt(context);
    let worst = 0;
    for (let b = 0; b < 4; b++) {
      for (const [k, t] of [900, 500].entries()) {
        const [a, f, g] = await Promise.all(engines.map(async (e) => (await e.forward(request(10 * b + k, t, false))).flow));
        const err = relError(f, a);
        worst = Math.max(worst, err);
        assert.ok(err > 0, `block ${b} step ${k}: equal to the bf16 engine, so ${what} did not run`);
        assert.ok(err < 0.1, `block ${b} step ${k}: ${what} vs bf16 ${err}`);
        assert.ok(relError(g, f) < 1e-5, `block ${b} step ${k}: graphed vs direct ${relError(g, f)}`);
      }
      for (const e of engines) {
        await e.forward(request(10 * b + 9, 0, true));
        await keepNewest(e, 2 * F * T);
      }
    }
    assert.ok((await fp8Graphed.forwardStats()).graphLaunches > 0, 'the forwards were replayed from graphs');
    return worst;
  };

  s('forwards from captured graphs equal direct launches, block after block (the cache buffers swap at every update)', async () => {
    const direct = (await createNativeEngine({ config: configWith('off') })) as NativeEngine;
    const graphed = (await createNativeEngine({ config: configWith('on') })) as NativeEngine;
    try {
      for (const e of [direct, graphed]) await e.setPrompt(context);
      for (let b = 0; b < 6; b++) {
        for (const [k, t] of [900, 600, 300].entries()) {
          const a = (await direct.forward(request(10 * b + k, t, false))).flow;
          const g = (await graphed.forward(request(10 * b + k, t, false))).flow;
          const err = relError(g, a);
          assert.ok(err < 1e-5, `block ${b} step ${k}: graph vs direct ${err}`);
        }
        for (const e of [direct, graphed]) {
          await e.forward(request(10 * b + 9, 0, true));
          await keepNewest(e, 2 * F * T);
        }
      }
      const g = await graphed.forwardStats();
      const d = await direct.forwardStats();
      console.log(`  graphs: ${g.graphCaptures} captured, ${g.graphLaunches} launches of ${g.forwards} forwards, fallback ${g.graphFallback}`);
      assert.is(g.graphFallback, 0, 'the capture worked (else the engine says why on stderr)');
      assert.ok(g.graphCaptures > 0 && g.graphLaunches > g.graphCaptures, `captures ${g.graphCaptures}, launches ${g.graphLaunches}`);
      assert.is(d.graphLaunches, 0);
      assert.is(g.forwards, 6 * 4);
      assert.ok(g.gpuMs > 0 && g.wallMs >= g.issueMs, 'the timing sums are filled');
    } finally {
      await direct.close();
      await graphed.close();
    }
  });

  s('engine.attention fp8: flows near the exact bf16 engine\'s (not equal), and the same from captured graphs', async () => {
    if (!cudnnAttention()) return;
    const exact = (await createNativeEngine({ config: configWith('off') })) as NativeEngine;
    const fp8 = (await createNativeEngine({ config: configWith('off', 'fp8') })) as NativeEngine;
    const fp8Graphed = (await createNativeEngine({ config: configWith('on', 'fp8') })) as NativeEngine;
    const engines = [exact, fp8, fp8Graphed];
    try {
      assert.match(fp8.info().attention ?? '', /^fp8 \(E4M3\), cuDNN [\d.]+ \(.*\), keys split in 2 below 4 waves$/);
      const worst = await nearButNotEqual(exact, fp8, fp8Graphed, 'FP8 attention');
      console.log(`  fp8 vs exact bf16: largest relative flow difference ${worst.toExponential(2)}`);
    } finally {
      for (const e of engines) await e.close();
    }
  });

  s('engine.dtype fp8: flows near the bf16 engine\'s (not equal), the same from graphs and from engines sharing the weights', async () => {
    // the first engine quantises its weights at finalize; the bf16 one shares the weight set and ignores the FP8
    // copies; the graphed one shares it and finds them made
    const fp8 = (await createNativeEngine({ config: configWith('off', 'exact', 'fp8') })) as NativeEngine;
    const exact = (await createNativeEngine({ config: configWith('off') })) as NativeEngine;
    const fp8Graphed = (await createNativeEngine({ config: configWith('on', 'exact', 'fp8') })) as NativeEngine;
    const engines = [exact, fp8, fp8Graphed];
    try {
      const { addon } = loadNativeAddon();
      const probe = addon.createEngine(dims, 0, 0, weightsIdentity(configWith('off')));
      try {
        assert.ok(addon.weightsShared(probe), 'the engines hold one weight set');
      } finally {
        addon.destroy(probe);
      }
      assert.is(fp8.info().precision, 'bf16+fp8');
      assert.match(fp8.info().provider ?? '', /bf16 with fp8 products \(E4M3, per-row scales\)/);
      const worst = await nearButNotEqual(exact, fp8, fp8Graphed, 'the FP8 products');
      console.log(`  fp8 products vs bf16: largest relative flow difference ${worst.toExponential(2)}`);
    } finally {
      for (const e of engines) await e.close();
    }
  });

  s('engine.dtype fp8 with engine.attention fp8: both at once, near bf16', async () => {
    if (!cudnnAttention()) return;
    const exact = (await createNativeEngine({ config: configWith('off') })) as NativeEngine;
    const both = (await createNativeEngine({ config: configWith('on', 'fp8', 'fp8') })) as NativeEngine;
    try {
      for (const e of [exact, both]) await e.setPrompt(context);
      for (const e of [exact, both]) {
        await e.forward(request(1, 0, true));
        await keepNewest(e, 2 * F * T);
      }
      for (const [k, t] of [900, 600, 300].entries()) {
        const err = relError((await both.forward(request(5 + k, t, false))).flow, (await exact.forward(request(5 + k, t, false))).flow);
        assert.ok(err > 0 && err < 0.15, `step ${k}: fp8 products and attention vs bf16 ${err}`);
      }
    } finally {
      await exact.close();
      await both.close();
    }
  });

  s('fp8 keeps the cache\'s E4M3 keys and values between updates: its flows match requantising every call, block after block', async () => {
    if (!cudnnAttention()) return;
    const kept = (await createNativeEngine({ config: configWith('on', 'fp8') })) as NativeEngine;
    const fresh = (await createNativeEngine({ config: configWith('off', 'fp8') })) as NativeEngine;
    // read at every forward: `fresh` quantises every row at every call, and so does `kept` in its clean passes, so that
    // the two caches stay equal and only the denoising forwards differ in how they quantise
    const forward = async (e: NativeEngine, req: ReturnType<typeof request>, requantise = e === fresh) => {
      if (requantise) process.env.SSN_FP8_KEEP_CACHE = '0';
      else delete process.env.SSN_FP8_KEEP_CACHE;
      return (await e.forward(req)).flow;
    };
    const compare = async () => {
      for (const e of [kept, fresh]) await e.setPrompt(context);
      let worst = 0;
      for (let b = 0; b < 5; b++) {
        for (const [k, t] of [900, 600, 300].entries()) {
          const a = await forward(kept, request(10 * b + k, t, false));
          const f = await forward(fresh, request(10 * b + k, t, false));
          const err = relError(a, f);
          // the first forward after an update quantises every row in both (had the update not been noticed, `kept`
          // would attend to the last block's copy); the later ones reuse the kept rows and their scale, so they differ
          // by FP8 rounding (about as much as fp8 from exact attention)
          if (k === 0) assert.ok(err < 1e-5, `block ${b}: first forward after the update ${err}`);
          else worst = Math.max(worst, err);
          assert.ok(err < 0.05, `block ${b} step ${k}: kept vs requantised ${err}`);
        }
        for (const e of [kept, fresh]) {
          await forward(e, request(10 * b + 9, 0, true), true);
          await keepNewest(e, 2 * F * T); // the rows shift by a block: every kept copy is out of date
        }
      }
      console.log(`  fp8 kept cache vs requantised every call: largest relative flow difference ${worst.toExponential(2)}`);
      assert.ok((await kept.forwardStats()).graphLaunches > 0, 'the kept-cache forwards were replayed from graphs');
    };
    try {
      await withEnv({ SSN_FP8_KEEP_CACHE: undefined }, compare);
    } finally {
      await kept.close();
      await fresh.close();
    }
  });

  s('engine.attention fp8 on the own Hopper kernel: flows near the exact bf16 engine\'s (not equal), and the same from captured graphs', async () => {
    if (!hopperAttention()) return;
    const exact = (await createNativeEngine({ config: configWith('off') })) as NativeEngine;
    const fp8 = (await createNativeEngine({ config: configWith('off', 'fp8', 'float16', 'hopper') })) as NativeEngine;
    const fp8Graphed = (await createNativeEngine({ config: configWith('on', 'fp8', 'float16', 'hopper') })) as NativeEngine;
    const engines = [exact, fp8, fp8Graphed];
    try {
      assert.is(fp8.info().attention, 'fp8 (E4M3), own Hopper kernel (wgmma + TMA)');
      const worst = await nearButNotEqual(exact, fp8, fp8Graphed, 'FP8 attention (own Hopper kernel)');
      console.log(`  fp8 on the own Hopper kernel vs exact bf16: largest relative flow difference ${worst.toExponential(2)}`);
    } finally {
      for (const e of engines) await e.close();
    }
  });

  s('keys cut into runs (SSN_ATTENTION_SPLIT) and merged give the whole call\'s flows to rounding, bf16 and fp8', async () => {
    if (!cudnnAttention()) return;
    const engines: NativeEngine[] = [];
    // read at every call: these engines attend whole, then in 2 and 3 runs (the cache's rows divide by both)
    const forward = async (e: NativeEngine, split: string, req: ReturnType<typeof request>) => {
      process.env.SSN_ATTENTION_SPLIT = split;
      return (await e.forward(req)).flow;
    };
    const compare = async () => {
      const refused = await createNativeEngine({ config: configWith('off') }).then(
        async (e) => { await e.close(); return null; },
        (error: Error) => error.message,
      );
      assert.ok(refused?.includes("SSN_ATTENTION_SPLIT must be auto or 1 to 8, got 'two'"), `a bad value fails at engine start: ${refused}`);
      const kernels: Array<['exact' | 'fp8', 'cudnn' | 'hopper']> = [['exact', 'cudnn'], ['fp8', 'cudnn']];
      if (hopperAttention()) kernels.push(['exact', 'hopper']);
      for (const [attention, kernel] of kernels) {
        process.env.SSN_ATTENTION_SPLIT = '1';
        const e = (await createNativeEngine({ config: configWith('off', attention, 'float16', kernel) })) as NativeEngine;
        engines.push(e);
        if (kernel === 'cudnn') assert.match(e.info().attention ?? '', /keys whole \(SSN_ATTENTION_SPLIT=1\)$/);
        await e.setPrompt(context);
        await forward(e, '1', request(1, 0, true));
        await keepNewest(e, 2 * F * T); // 2 frames cached: 3 frames of keys with the block's own
        let worst = 0;
        for (const [k, t] of [900, 500, 100].entries()) {
          const whole = await forward(e, '1', request(20 + k, t, false));
          for (const split of ['2', '3']) {
            const err = relError(await forward(e, split, request(20 + k, t, false)), whole);
            worst = Math.max(worst, err);
            assert.ok(err > 0, `${attention} (${kernel}), ${split} runs, step ${k}: equal to the whole call, so the split did not run`);
            assert.ok(err < (attention === 'fp8' ? 0.05 : 1e-2), `${attention}, ${split} runs, step ${k}: ${err}`);
          }
        }
        console.log(`  ${attention} (${kernel}): split vs whole, largest relative flow difference ${worst.toExponential(2)}`);
      }
    };
    try {
      await withEnv({ SSN_ATTENTION_SPLIT: 'two' }, compare);
    } finally {
      for (const e of engines) await e.close();
    }
  });

  s('a second engine on the device finds the first one\'s cuDNN plans built', async () => {
    if (!cudnnAttention()) return;
    const first = (await createNativeEngine({ config: configWith('off') })) as NativeEngine;
    const second = (await createNativeEngine({ config: configWith('off') })) as NativeEngine;
    try {
      for (const e of [first, second]) await e.setPrompt(context);
      await first.forward(request(1, 500, false));
      await second.forward(request(1, 500, false));
      const plans = await second.attentionPlans();
      assert.is(plans.built, 0, 'nothing built twice');
      assert.ok(plans.reused >= 2, `self- and cross-attention plans reused: ${plans.reused}`);
    } finally {
      await first.close();
      await second.close();
    }
  });

  for (const graphs of ['off', 'on'] as const) s(`the engine's step loop (denoiseSteps: the latent on the GPU, the sampler a kernel) gives the bits of forwards with the generator's sampler between them (CUDA graphs ${graphs})`, async () => {
    const engine = (await createNativeEngine({ config: configWith(graphs) })) as NativeEngine;
    const size = C * F * H * W;
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    try {
      await engine.setPrompt(context);
      await engine.forward(request(1, 0, true));
      await keepNewest(engine, F * T);
      const framePositions = Int32Array.from([4, 5, 6]);
      const sigmas = [1, 0.8, 0.55, 0.25];
      const noises = new Float32Array((sigmas.length - 1) * size);
      for (let k = 1; k < sigmas.length; k++) noises.set(wave(size, 40 + k), (k - 1) * size);
      for (const [what, sample, renoise] of [['re-noise, flow', false, true], ['re-noise, sample prediction', true, true], ['Euler, flow', false, false]] as const) {
        // the generator's loop: one forward a step, src/loop/sampler.ts between them
        const x = wave(size, 30);
        const expected = new Float32Array(size);
        for (let k = 0; k < sigmas.length; k++) {
          const r = await engine.forward({ latent: x, timesteps: new Float32Array(F).fill(sigmas[k] * 1000), framePositions, keepBlockKv: false, keepQueries: 'none' });
          const v = sample ? flowOfSampleInPlace(r.flow, x, sigmas[k]) : r.flow;
          if (k === sigmas.length - 1) denoisedInto(expected, x, v, sigmas[k]);
          else if (renoise) renoiseInPlace(x, v, noises.subarray((k) * size, (k + 1) * size), sigmas[k], sigmas[k + 1]);
          else eulerInPlace(x, v, sigmas[k], sigmas[k + 1]);
        }
        const x0 = new Float32Array(size);
        await engine.denoiseSteps({ latent: wave(size, 30), framePositions, sigmas, noises: renoise ? noises : undefined, samplePrediction: sample, sigmaFloor: SAMPLE_SIGMA_FLOOR, x0Into: x0 });
        assert.ok(x0.some((v) => v !== 0) && x0.every(Number.isFinite), what);
        assert.equal(bits(x0), bits(expected), what);
      }
      assert.equal([engine.info().cacheRows, engine.info().pendingRows], [F * T, 0], 'the cache as it was');
    } finally {
      await engine.close();
    }
  });

  s('the C block loop runs whole blocks on the cache as it is and keeps its row count', async () => {
    const engine = (await createNativeEngine({ config: configWith('on') })) as NativeEngine;
    try {
      await engine.setPrompt(context);
      await engine.forward(request(1, 0, true));
      await keepNewest(engine, F * T);
      await engine.forward(request(2, 0, true)); // pending rows: taken in by the loop first
      const out = await engine.loopBlocks({ noise: wave(C * F * H * W, 5), sigmas: [1, 0.75, 0.5], framePositions: Int32Array.from([7, 8, 9]), blocks: 3, sinkRows: T });
      assert.is(out.blockMs.length, 3);
      for (let b = 0; b < 3; b++) {
        assert.ok(out.forwardsMs[b] > 0 && out.updateMs[b] > 0 && out.forwardsMs[b] + out.updateMs[b] <= out.blockMs[b] + 1e-9, `block ${b}: ${out.blockMs[b]}, ${out.forwardsMs[b]}, ${out.updateMs[b]}`);
      }
      assert.equal([engine.info().cacheRows, engine.info().pendingRows], [F * T, 0]);
      const after = await engine.forward(request(3, 500, false));
      assert.ok(after.flow.every(Number.isFinite));
    } finally {
      await engine.close();
    }
  });

  s.run();
}

/**
 * engine.attentionKernel on the GPU: what each setting reports and runs, and the own Hopper kernel's flows against
 * cuDNN's over a stream whose cache grows past several key tiles. On a GPU other than Hopper: auto reports cuDNN and
 * `hopper` is refused.
 */
function defineAttentionKernelSuite(): void {
  const s = suite('native attention kernel (engine.attentionKernel)');
  const model: ConfigInput['model'] = {
    arch: { dim: 256, layers: 2, heads: 2, ffnDim: 512, latentChannels: 16, textDim: 64, textLen: 32 },
    latentHeight: 8, latentWidth: 12, weights: 'synthetic', syntheticSeed: 9,
  };
  const configWith = (attentionKernel: 'auto' | 'cudnn' | 'hopper') =>
    configSchema.parse({ model, engine: { name: 'native', dtype: 'float16', cudaGraphs: testCudaGraphs(), attentionKernel } });
  const dims = modelDims(configWith('auto'));
  const { tokensPerFrame: T, latentChannels: C, latentHeight: H, latentWidth: W } = dims;
  const F = 3;
  const hopperGpu = hopperAttention();

  s('auto runs the own Hopper kernel on a Hopper GPU and cuDNN elsewhere; cudnn runs cuDNN; the flows agree', async () => {
    const auto = await createNativeEngine({ config: configWith('auto') });
    const cudnn = await createNativeEngine({ config: configWith('cudnn') });
    try {
      const autoAttention = auto.info().attention ?? '';
      console.log(`  attention: auto = ${autoAttention}; cudnn = ${cudnn.info().attention}`);
      if (hopperGpu) assert.match(autoAttention, /own Hopper kernel/);
      else assert.not.match(autoAttention, /Hopper/);
      assert.not.match(cudnn.info().attention ?? '', /Hopper/);
      const context = wave(dims.textLen * dims.textDim, 3);
      await auto.setPrompt(context);
      await cudnn.setPrompt(context);
      // 8 blocks, each kept in the cache: 72 to 576 keys, across key tiles' boundaries (128 and 176 rows) on the way
      let worst = 0;
      for (let b = 0; b < 8; b++) {
        const request = (keep: boolean) => ({
          latent: wave(C * F * H * W, 10 + b), timesteps: new Float32Array(F).fill(keep ? 0 : 750),
          framePositions: Int32Array.from([3 * b, 3 * b + 1, 3 * b + 2]), keepBlockKv: keep, keepQueries: 'none' as const,
        });
        const [a, c] = await Promise.all([auto.forward(request(false)), cudnn.forward(request(false))]);
        worst = Math.max(worst, relError(a.flow, c.flow));
        await Promise.all([auto.forward(request(true)), cudnn.forward(request(true))]);
        for (const e of [auto, cudnn]) {
          const { cacheRows, pendingRows } = e.info();
          const rows = cacheRows + pendingRows;
          const positions = new Float32Array(rows * 3);
          for (let r = 0; r < rows; r++) positions.set([Math.floor(r / T), Math.floor((r % T) / dims.gridWidth), (r % T) % dims.gridWidth], r * 3);
          await e.updateCache({ rows, terms: 1, perLayer: false, sources: Int32Array.from({ length: rows }, (_, r) => r), weights: new Float32Array(rows).fill(1), positions });
        }
      }
      console.log(`  auto against cudnn: largest flow relative difference ${worst.toExponential(2)} over 8 blocks`);
      assert.ok(worst < 1e-2, `flows differ by ${worst}`);
    } finally {
      await auto.close();
      await cudnn.close();
    }
  });

  s('hopper runs where auto would take it, and is refused with its reason elsewhere', async () => {
    let engine: Engine | undefined;
    let error: Error | undefined;
    await createNativeEngine({ config: configWith('hopper') }).then(
      (e) => (engine = e),
      (e: Error) => (error = e),
    );
    if (hopperGpu) {
      assert.ok(engine, error?.message);
      assert.match(engine!.info().attention ?? '', /own Hopper kernel/);
    } else {
      assert.match(error?.message ?? '', /engine\.attentionKernel 'hopper': the Hopper attention kernel needs a Hopper GPU/);
    }
    await engine?.close();
  });

  s.run();
}

if (reason) {
  console.log(`native bf16 engine tests skipped: ${reason}`);
} else {
  defineSharingSuite();
  defineGraphsSuite();
  defineSuite('head_dim 128', { dim: 256, layers: 2, heads: 2, ffnDim: 512, latentChannels: 16, textDim: 64, textLen: 32 });
  defineSuite('head_dim 64', { dim: 128, layers: 2, heads: 2, ffnDim: 256, latentChannels: 8, textDim: 32, textLen: 8 });
  defineSuite('head_dim 16, the contract suite\'s model', { dim: 32, layers: 2, heads: 2, ffnDim: 64, latentChannels: 4, textDim: 8, textLen: 5 }, 'float32');
  defineSuite('head_dim 16', { dim: 32, layers: 2, heads: 2, ffnDim: 64, latentChannels: 4, textDim: 8, textLen: 8 });
  // Wan 1.3B's width: the row kernels' threads each hold several groups of the row (dim 1536: 3 of 4 floats, 192
  // threads of 8 bf16), which the smaller widths above never reach
  defineSuite('dim 1536', { dim: 1536, layers: 1, heads: 12, ffnDim: 2048, latentChannels: 16, textDim: 64, textLen: 16 });
  // exact attention on cuDNN where engine.attentionKernel auto takes the own Hopper kernel (Hopper GPUs at head_dim 128)
  defineSuite('head_dim 128, cuDNN attention', { dim: 256, layers: 2, heads: 2, ffnDim: 512, latentChannels: 16, textDim: 64, textLen: 32 },
    'float16', { attentionKernel: 'cudnn' });
  defineAttentionKernelSuite();
  // the pipeline engine: 3 layers over 2 stages, on two GPUs where there are two (else both on GPU 0)
  const gpus = loadNativeAddon().probe.devices;
  defineSuite(`head_dim 128, 2 stages on GPUs ${gpus > 1 ? '0 and 1' : '0 and 0'}`,
    { dim: 256, layers: 3, heads: 2, ffnDim: 512, latentChannels: 16, textDim: 64, textLen: 32 }, 'float16',
    { stages: 2, devices: gpus > 1 ? [0, 1] : [0, 0] });
}
