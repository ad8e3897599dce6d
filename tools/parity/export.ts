/**
 * Parity, part 1 (here, Node): runs the runtime's ONNX graphs (src/onnx, float32, ONNX Runtime CPU)
 * on the demo model for a full block with a filled cache, and writes graphs, inputs and outputs for
 * tools/parity/compare.py (PyTorch reference).
 *
 *   npx tsx tools/parity/export.ts [outDir=tmp/parity] [--config F] [--set k=v ...]
 *
 * The cache is filled by three clean passes (t = 0) over ground-truth frames 0..8 of the prompt
 * (576 rows for the demo model); the block under test is frames 9..11 at t = 833.3, a noisy latent.
 * Writes: text-kv.onnx, transformer.onnx (self-contained), parity.safetensors (every input and
 * every ONNX Runtime output, float32).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../../src/config/load.js';
import { modelDims } from '../../src/model/dims.js';
import { loadWeights } from '../../src/model/load-weights.js';
import type { WeightTensor } from '../../src/model/weights.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { createPromptEncoder } from '../../src/text/prompt-encoder.js';
import { buildTextKvGraph, TEXT_KV_IO } from '../../src/onnx/text-kv-graph.js';
import { buildTransformerGraph, TRANSFORMER_IO } from '../../src/onnx/transformer-graph.js';
import { encodeSpaceToDepth } from '../../src/decode/space-to-depth.js';
import { gaussianNoise } from '../../src/loop/noise.js';
import { renderGroundTruth } from '../../src/scene/ground-truth.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';

const args = process.argv.slice(2);
const outDir = path.resolve(args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--'))) ?? 'tmp/parity');
const configFile = args.includes('--config') ? args[args.indexOf('--config') + 1] : undefined;
const sets = args.flatMap((a, i) => (a === '--set' ? [args[i + 1]] : []));

const config = loadConfig({ file: configFile, set: sets });
const dims = modelDims(config);
const weights = await loadWeights(config);
const text = await createPromptEncoder(config, weights);
const prompt = config.generation.prompt;
const context = await text.encode(prompt);
const F = config.generation.blockFrames;
const d = dims.dim;

mkdirSync(outDir, { recursive: true });
const textGraph = buildTextKvGraph(dims, weights, 'float32').serialize();
const graph = buildTransformerGraph(dims, weights, { dtype: 'float32', attentionPresent: false }).serialize();
writeFileSync(path.join(outDir, 'text-kv.onnx'), textGraph);
writeFileSync(path.join(outDir, 'transformer.onnx'), graph);
const sessionOptions: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
const textSession = await ort.InferenceSession.create(textGraph, sessionOptions);
const session = await ort.InferenceSession.create(graph, sessionOptions);

const tensors = new Map<string, WeightTensor>();
const keep = (name: string, shape: number[], data: Float32Array): void => {
  tensors.set(name, { shape, data: Float32Array.from(data) });
};
const f32 = (data: Float32Array, shape: number[]): ort.Tensor => new ort.Tensor('float32', data, shape);

keep('context', [dims.textLen, dims.textDim], context);
const textOut = await textSession.run({ [TEXT_KV_IO.context]: f32(context, [dims.textLen, dims.textDim]) });
const crossK: Float32Array[] = [];
const crossV: Float32Array[] = [];
for (let i = 0; i < dims.layers; i++) {
  crossK.push(textOut[TEXT_KV_IO.crossK(i)].data as Float32Array);
  crossV.push(textOut[TEXT_KV_IO.crossV(i)].data as Float32Array);
  keep(`ort.cross_k.${i}`, [dims.textLen, d], crossK[i]);
  keep(`ort.cross_v.${i}`, [dims.textLen, d], crossV[i]);
}

// Cache rows, per layer, grown by clean passes.
let rows = 0;
let cacheK: Float32Array[] = Array.from({ length: dims.layers }, () => new Float32Array(0));
let cacheV: Float32Array[] = Array.from({ length: dims.layers }, () => new Float32Array(0));
let cachePos: Float32Array = new Float32Array(0);
const concat = (a: Float32Array, b: Float32Array): Float32Array => {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

async function run(latent: Float32Array, t: number, firstFrame: number): Promise<ort.InferenceSession.OnnxValueMapType> {
  const feeds: Record<string, ort.Tensor> = {
    [TRANSFORMER_IO.latent]: f32(latent, [1, dims.latentChannels, F, dims.latentHeight, dims.latentWidth]),
    [TRANSFORMER_IO.timesteps]: f32(new Float32Array(F).fill(t), [F]),
    [TRANSFORMER_IO.framePositions]: f32(Float32Array.from({ length: F }, (_, f) => firstFrame + f), [F]),
  };
  for (let i = 0; i < dims.layers; i++) {
    feeds[TRANSFORMER_IO.crossK(i)] = f32(crossK[i], [dims.textLen, d]);
    feeds[TRANSFORMER_IO.crossV(i)] = f32(crossV[i], [dims.textLen, d]);
    feeds[TRANSFORMER_IO.cacheK(i)] = f32(cacheK[i], [rows, d]);
    feeds[TRANSFORMER_IO.cacheV(i)] = f32(cacheV[i], [rows, d]);
    feeds[TRANSFORMER_IO.cachePos(i)] = f32(cachePos, [rows, 3]);
  }
  const wanted = session.outputNames.filter((n) => n === TRANSFORMER_IO.flow || /^[kv]\.\d+$/.test(n));
  return session.run(feeds, wanted);
}

const spec = loadSceneSpec();
const size = dims.latentWidth * config.decoder.factor;
const gt = (start: number): Float32Array =>
  encodeSpaceToDepth(renderGroundTruth(parsePrompt(prompt, spec), spec, start, F), size, size, config.decoder.factor);

const cleanBlocks = 3;
for (let blk = 0; blk < cleanBlocks; blk++) {
  const latent = gt(blk * F);
  keep(`clean_latent.${blk}`, [1, dims.latentChannels, F, dims.latentHeight, dims.latentWidth], latent);
  const out = await run(latent, 0, blk * F);
  for (let i = 0; i < dims.layers; i++) {
    cacheK[i] = concat(cacheK[i], out[TRANSFORMER_IO.blockK(i)].data as Float32Array);
    cacheV[i] = concat(cacheV[i], out[TRANSFORMER_IO.blockV(i)].data as Float32Array);
  }
  const pos = new Float32Array(F * dims.tokensPerFrame * 3);
  for (let f = 0; f < F; f++) {
    for (let r = 0; r < dims.gridHeight; r++) {
      for (let c = 0; c < dims.gridWidth; c++) {
        const j = (f * dims.tokensPerFrame + r * dims.gridWidth + c) * 3;
        pos[j] = blk * F + f;
        pos[j + 1] = r;
        pos[j + 2] = c;
      }
    }
  }
  cachePos = concat(cachePos, pos);
  rows += F * dims.tokensPerFrame;
}
for (let i = 0; i < dims.layers; i++) {
  keep(`cache_k.${i}`, [rows, d], cacheK[i]);
  keep(`cache_v.${i}`, [rows, d], cacheV[i]);
}
keep('cache_pos', [rows, 3], cachePos);

// The block under test: frames 9..11 at the third shifted timestep, x_t = (1 - s) x0 + s n.
const t = 833.3333;
const s = t / 1000;
const x0 = gt(cleanBlocks * F);
const noise = gaussianNoise(x0.length, 1234, 0);
const latent = x0.map((v, i) => (1 - s) * v + s * noise[i]);
keep('latent', [1, dims.latentChannels, F, dims.latentHeight, dims.latentWidth], latent);
keep('timesteps', [F], new Float32Array(F).fill(t));
keep('frame_positions', [F], Float32Array.from({ length: F }, (_, f) => cleanBlocks * F + f));
const out = await run(latent, t, cleanBlocks * F);
keep('ort.flow', [1, dims.latentChannels, F, dims.latentHeight, dims.latentWidth], out[TRANSFORMER_IO.flow].data as Float32Array);
for (let i = 0; i < dims.layers; i++) {
  keep(`ort.k.${i}`, [F * dims.tokensPerFrame, d], out[TRANSFORMER_IO.blockK(i)].data as Float32Array);
  keep(`ort.v.${i}`, [F * dims.tokensPerFrame, d], out[TRANSFORMER_IO.blockV(i)].data as Float32Array);
}
await writeSafetensors(path.join(outDir, 'parity.safetensors'), tensors, {
  metadata: { prompt, weights: config.model.weights, cacheRows: String(rows), t: String(t), onnxruntime: ort.env.versions.common },
});
await textSession.release();
await session.release();
process.stdout.write(`wrote ${outDir}: graphs, ${tensors.size} tensors (cache ${rows} rows/layer, block frames ${cleanBlocks * F}..${cleanBlocks * F + F - 1} at t=${t})\n`);
