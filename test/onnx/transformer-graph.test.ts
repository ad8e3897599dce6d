import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { referenceForward, referenceTextKv } from '../../src/engine/reference.js';
import { buildTextKvGraph, TEXT_KV_IO } from '../../src/onnx/text-kv-graph.js';
import { buildTransformerGraph, TRANSFORMER_IO as IO } from '../../src/onnx/transformer-graph.js';
import { cacheRows, relError, tinyDims as dims, tinyWeights as weights, wave } from './helpers.js';

const F = 3;
const context = wave(dims.textLen * dims.textDim, 1);
const latent = wave(dims.latentChannels * F * dims.latentHeight * dims.latentWidth, 2);
const timesteps = [937.5, 833.3, 625];
const framePositions = [9, 10, 11];
const refKv = referenceTextKv(dims, weights, context);

let textSession: ort.InferenceSession;
let crossKv: Record<string, ort.Tensor>;

test.before(async () => {
  textSession = await ort.InferenceSession.create(buildTextKvGraph(dims, weights, 'float32').serialize(), { intraOpNumThreads: 1 });
  crossKv = (await textSession.run({ [TEXT_KV_IO.context]: new ort.Tensor('float32', context, [dims.textLen, dims.textDim]) })) as Record<
    string,
    ort.Tensor
  >;
});

test('text-kv graph = reference cross-attention K (with norm_k) and V of every layer', () => {
  for (let i = 0; i < dims.layers; i++) {
    assert.ok(relError(crossKv[TEXT_KV_IO.crossK(i)].data as Float32Array, refKv[i].k) < 1e-5, `layer ${i} K`);
    assert.ok(relError(crossKv[TEXT_KV_IO.crossV(i)].data as Float32Array, refKv[i].v) < 1e-5, `layer ${i} V`);
  }
});

for (const attentionPresent of [false, true]) {
  test(`transformer graph = reference, caches of 0, 7 and 19 rows (present outputs: ${attentionPresent})`, async () => {
    const graph = buildTransformerGraph(dims, weights, { dtype: 'float32', attentionPresent });
    const session = await ort.InferenceSession.create(graph.serialize(), { intraOpNumThreads: 1 });
    for (const N of [0, 7, 19]) {
      const cache = cacheRows(N);
      const feeds: Record<string, ort.Tensor> = {
        [IO.latent]: new ort.Tensor('float32', latent, [1, dims.latentChannels, F, dims.latentHeight, dims.latentWidth]),
        [IO.timesteps]: new ort.Tensor('float32', Float32Array.from(timesteps), [F]),
        [IO.framePositions]: new ort.Tensor('float32', Float32Array.from(framePositions), [F]),
      };
      for (let i = 0; i < dims.layers; i++) {
        feeds[IO.crossK(i)] = crossKv[TEXT_KV_IO.crossK(i)];
        feeds[IO.crossV(i)] = crossKv[TEXT_KV_IO.crossV(i)];
        feeds[IO.cacheK(i)] = new ort.Tensor('float32', cache[i].keys, [N, dims.dim]);
        feeds[IO.cacheV(i)] = new ort.Tensor('float32', cache[i].values, [N, dims.dim]);
        feeds[IO.cachePos(i)] = new ort.Tensor('float32', cache[i].positions, [N, 3]);
      }
      const out = await session.run(feeds);
      const ref = referenceForward(dims, weights, { latent, timesteps, framePositions, crossKv: refKv, cache });
      const flowErr = relError(out[IO.flow].data as Float32Array, ref.flow);
      assert.ok(flowErr < 1e-4, `N=${N}: flow relative error ${flowErr}`);
      assert.equal(out[IO.flow].dims, [1, dims.latentChannels, F, dims.latentHeight, dims.latentWidth]);
      for (let i = 0; i < dims.layers; i++) {
        assert.ok(relError(out[IO.blockK(i)].data as Float32Array, ref.keys[i]) < 1e-4, `N=${N} layer ${i}: block keys (un-rotated)`);
        assert.ok(relError(out[IO.blockV(i)].data as Float32Array, ref.values[i]) < 1e-4, `N=${N} layer ${i}: block values`);
        assert.ok(relError(out[IO.queries(i)].data as Float32Array, ref.queries[i]) < 1e-4, `N=${N} layer ${i}: RoPE'd queries`);
        assert.ok(relError(out[IO.querySums(i)].data as Float32Array, ref.querySums[i]) < 1e-4, `N=${N} layer ${i}: query sums`);
      }
    }
    await session.release();
  });
}

test('the cache matters: a graph fed a different cache gives a different flow', async () => {
  const session = await ort.InferenceSession.create(buildTransformerGraph(dims, weights, { dtype: 'float32', attentionPresent: false }).serialize());
  const run = async (seed: number): Promise<Float32Array> => {
    const cache = cacheRows(4, seed);
    const feeds: Record<string, ort.Tensor> = {
      [IO.latent]: new ort.Tensor('float32', latent, [1, dims.latentChannels, F, dims.latentHeight, dims.latentWidth]),
      [IO.timesteps]: new ort.Tensor('float32', Float32Array.from(timesteps), [F]),
      [IO.framePositions]: new ort.Tensor('float32', Float32Array.from(framePositions), [F]),
    };
    for (let i = 0; i < dims.layers; i++) {
      feeds[IO.crossK(i)] = crossKv[TEXT_KV_IO.crossK(i)];
      feeds[IO.crossV(i)] = crossKv[TEXT_KV_IO.crossV(i)];
      feeds[IO.cacheK(i)] = new ort.Tensor('float32', cache[i].keys, [4, dims.dim]);
      feeds[IO.cacheV(i)] = new ort.Tensor('float32', cache[i].values, [4, dims.dim]);
      feeds[IO.cachePos(i)] = new ort.Tensor('float32', cache[i].positions, [4, 3]);
    }
    return (await session.run(feeds, [IO.flow]))[IO.flow].data as Float32Array;
  };
  assert.ok(relError(await run(0), await run(5)) > 1e-3);
  await session.release();
});

test.after(async () => {
  await textSession.release();
});

test.run();
