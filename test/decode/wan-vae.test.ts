import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decoderWeightShapes, WAN21_VAE_ARCH } from '../../src/decode/wan-vae/arch.js';
import { framesToRgb24, WanVaeDecoder, type WanVaeDecoderOptions } from '../../src/decode/wan-vae/wan-vae-decoder.js';
import { loadWanVaeWeights, syntheticWanVaeWeights } from '../../src/decode/wan-vae/weights.js';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.js';
import type { WeightTensor } from '../../src/model/weights.js';
import { SinkstreamError } from '../../src/errors.js';
import { rejection } from '../helpers/assertions.js';

// The fixture: tools/reference/wan_vae.py (vae.py's own frame-by-frame loop) on the synthetic
// weights of dim 8, seed 7 (tools/bench/wan-vae-ort.ts weights --dim 8 --seed 7), latent [16, 5, 3, 4].
const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = await readSafetensors(path.join(here, 'fixtures', 'wan-vae-dim8.safetensors'));
const latent = fixture.get('latent')!;
const expected = fixture.get('frames')!; // [17, 3, 24, 32]
const arch = { ...WAN21_VAE_ARCH, dim: 8 };
const [C, F, h, w] = latent.shape;
const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-wan-vae-'));

const options: WanVaeDecoderOptions = {
  weights: 'synthetic',
  syntheticSeed: 7,
  arch,
  latentChannels: C,
  latentHeight: h,
  latentWidth: w,
  provider: 'cpu',
  dtype: 'float32',
  threads: 1,
};

/** Latent frames [from, from + n) as [C, n, h, w]. */
function frames(from: number, n: number): Float32Array {
  const plane = h * w;
  const out = new Float32Array(C * n * plane);
  for (let c = 0; c < C; c++) out.set(latent.data.subarray((c * F + from) * plane, (c * F + from + n) * plane), c * n * plane);
  return out;
}

async function decodeBlocks(decoder: WanVaeDecoder, blocks: number[]): Promise<{ data: Float32Array; counts: number[] }> {
  const parts: Float32Array[] = [];
  const counts: number[] = [];
  let at = 0;
  for (const n of blocks) {
    const out = await decoder.decodeFloat(frames(at, n));
    parts.push(out.data);
    counts.push(out.frames);
    at += n;
  }
  const data = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, counts };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const decoder = await WanVaeDecoder.open({ ...options, framesPerRun: 4 });

test('frame size and counts: 8x the latent, 1 video frame for the first latent frame, 4 for every later one', async () => {
  assert.is(decoder.width, 32);
  assert.is(decoder.height, 24);
  assert.is(decoder.framesForFirstLatentFrame, 1);
  assert.is(decoder.framesPerLatentFrame, 4);
  await decoder.reset();
  const { counts } = await decodeBlocks(decoder, [3, 2]);
  assert.equal(counts, [1 + 2 * 4, 2 * 4]);
  await decoder.reset();
  const bytes = await decoder.decode(frames(0, 1));
  assert.is(bytes.length, 1);
  assert.is(bytes[0].length, 32 * 24 * 3);
});

test('ONNX on the CPU equals the PyTorch reference (vae.py loop), decoded as a stream of blocks [3, 2]', async () => {
  await decoder.reset();
  const { data } = await decodeBlocks(decoder, [3, 2]);
  assert.equal(expected.shape, [17, 3, 24, 32]);
  const err = maxAbsDiff(data, expected.data);
  assert.ok(err < 1e-4, `max |ORT - PyTorch| = ${err}`);
});

test('streaming equals decoding the whole clip, for any split into blocks and any frames per run', async () => {
  await decoder.reset();
  const whole = (await decodeBlocks(decoder, [5])).data;
  const perFrame = await WanVaeDecoder.open({ ...options, framesPerRun: 1 });
  try {
    for (const blocks of [[1, 1, 1, 1, 1], [2, 3], [1, 4]]) {
      await decoder.reset();
      const a = maxAbsDiff((await decodeBlocks(decoder, blocks)).data, whole);
      assert.ok(a < 1e-5, `blocks ${blocks}: ${a}`);
      await perFrame.reset();
      const b = maxAbsDiff((await decodeBlocks(perFrame, blocks)).data, whole);
      assert.ok(b < 1e-5, `blocks ${blocks}, one latent frame per run: ${b}`);
    }
  } finally {
    await perFrame.close();
  }
});

test('reset starts a new stream: the same latent gives the same frames again', async () => {
  await decoder.reset();
  const a = await decoder.decodeFloat(frames(0, 2));
  const later = await decoder.decodeFloat(frames(0, 2)); // same latent mid-stream: other frames
  assert.is(later.frames, 8);
  await decoder.reset();
  const b = await decoder.decodeFloat(frames(0, 2));
  assert.is(a.frames, 5);
  assert.is(maxAbsDiff(a.data, b.data), 0);
});

test('decode() gives the float frames as RGB24, [-1, 1] -> [0, 255] clamped', async () => {
  await decoder.reset();
  const float = await decoder.decodeFloat(frames(0, 2));
  await decoder.reset();
  const bytes = await decoder.decode(frames(0, 2));
  const again = framesToRgb24(float.data, float.frames, 24, 32);
  assert.is(bytes.length, 5);
  for (let f = 0; f < 5; f++) assert.ok(Buffer.from(bytes[f]).equals(Buffer.from(again[f])), `frame ${f}`);
  const px = framesToRgb24(Float32Array.from([-2, -1, 0, 1, 2, 0.5]), 1, 1, 2);
  assert.equal([...px[0]], [0, 128, 255, 0, 255, 191]);
});

test('a safetensors checkpoint (decoder keys among the encoder\'s) decodes like the same synthetic weights', async () => {
  const weights = syntheticWanVaeWeights(arch, 7);
  const file = new Map<string, WeightTensor>(weights);
  file.set('encoder.conv1.weight', { shape: [8, 3, 3, 3, 3], data: new Float32Array(8 * 81) });
  const p = path.join(dir, 'vae.safetensors');
  await writeSafetensors(p, file);
  const fromFile = await WanVaeDecoder.open({ ...options, weights: p, syntheticSeed: undefined, arch: undefined });
  try {
    assert.is(fromFile.arch.dim, 8);
    await decoder.reset();
    const a = await decoder.decodeFloat(frames(0, 2));
    const b = await fromFile.decodeFloat(frames(0, 2));
    assert.is(maxAbsDiff(a.data, b.data), 0);
  } finally {
    await fromFile.close();
  }
});

test('a torch.save checkpoint (.pth, float16, encoder keys beside) reads as the same weights in float16 safetensors', async () => {
  // wan-vae-dim2.pth: tools/reference/wan_vae.py pth on the synthetic weights of dim 2, seed 3
  const weights = syntheticWanVaeWeights({ ...WAN21_VAE_ARCH, dim: 2 }, 3);
  const p = path.join(dir, 'dim2-f16.safetensors');
  await writeSafetensors(p, weights, { dtype: 'F16' });
  const pth = await loadWanVaeWeights(path.join(here, 'fixtures', 'wan-vae-dim2.pth'));
  const st = await loadWanVaeWeights(p);
  assert.is(pth.arch.dim, 2);
  assert.equal([...pth.weights.keys()].sort(), [...weights.keys()].sort());
  for (const [key, t] of st.weights) {
    assert.equal(pth.weights.get(key)!.shape, t.shape, key);
    assert.is(maxAbsDiff(pth.weights.get(key)!.data, t.data), 0, key);
  }
});

test('float16 graphs (what WebGPU runs) follow the float32 reference to half precision', async () => {
  const half = await WanVaeDecoder.open({ ...options, dtype: 'float16', framesPerRun: 2 });
  try {
    const { data } = await decodeBlocks(half, [3, 2]);
    const err = maxAbsDiff(data, expected.data);
    assert.ok(err > 0 && err < 2e-2, `max |ORT float16 - PyTorch float32| = ${err}`);
  } finally {
    await half.close();
  }
});

/** Opening the decoder on `weights`, written to `name`, fails: the error. */
async function openFails(weights: Map<string, WeightTensor>, name: string): Promise<SinkstreamError> {
  const p = path.join(dir, name);
  await writeSafetensors(p, weights);
  return rejection(WanVaeDecoder.open({ ...options, weights: p }));
}

test('a checkpoint with a wrong shape or a missing key: ERR_MODEL_SHAPE naming the key', async () => {
  const weights = syntheticWanVaeWeights(arch, 1);
  const wrong = new Map(weights);
  wrong.set('decoder.middle.1.proj.weight', { shape: [32, 16, 1, 1], data: new Float32Array(32 * 16) });
  const e1 = await openFails(wrong, 'wrong.safetensors');
  assert.is(e1.code, 'ERR_MODEL_SHAPE');
  assert.match(e1.message, "'decoder.middle.1.proj.weight' has shape [32, 16, 1, 1], expected [32, 32, 1, 1]");

  const missing = new Map(weights);
  missing.delete('decoder.upsamples.3.time_conv.bias');
  const e2 = await openFails(missing, 'missing.safetensors');
  assert.is(e2.code, 'ERR_MODEL_SHAPE');
  assert.match(e2.message, "missing key 'decoder.upsamples.3.time_conv.bias'");

  const noHead = new Map(weights);
  noHead.delete('decoder.head.2.weight');
  const e3 = await openFails(noHead, 'nohead.safetensors');
  assert.is(e3.code, 'ERR_MODEL_SHAPE');
  assert.match(e3.message, "'decoder.head.2.weight'");
  assert.ok(e3.isBadInput);
});

test('the published architecture: 73.3 M decoder parameters, the checkpoint\'s key names', () => {
  const shapes = decoderWeightShapes(WAN21_VAE_ARCH);
  const params = [...shapes.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  assert.is(shapes.size, 108);
  assert.ok(Math.abs(params / 1e6 - 73.3) < 0.05, `${params}`);
  assert.equal(shapes.get('decoder.upsamples.3.time_conv.weight'), [768, 384, 3, 1, 1]);
  assert.equal(shapes.get('decoder.upsamples.4.shortcut.weight'), [384, 192, 1, 1, 1]);
  assert.equal(shapes.get('decoder.upsamples.11.resample.1.weight'), [96, 192, 3, 3]);
  assert.equal(shapes.get('decoder.middle.1.to_qkv.weight'), [1152, 384, 1, 1]);
  assert.equal(shapes.get('conv2.weight'), [16, 16, 1, 1, 1]);
  assert.not.ok(shapes.has('decoder.upsamples.11.time_conv.weight'));
});

test.after(async () => {
  await decoder.close();
});

test.run();
