/**
 * TAEHV on ONNX Runtime (CPU) against the PyTorch reference's fixture (tools/reference/taehv.py
 * fixtures: a tiny decoder, channels 8/8/4/4, two blocks of 3 latent frames of 3x4, the frames decoded
 * from the whole clip at once), streaming against the whole clip, and the weights' checks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors.js';
import { expectedShapes, framesOfBlock, type TaehvShape } from '../../src/decode/taehv/architecture.js';
import { TaehvRuntime } from '../../src/decode/taehv/runtime.js';
import { buildTaehvGraph, TAEHV_IO } from '../../src/decode/taehv/graph.js';
import * as ort from 'onnxruntime-node';
import { loadTaehvCheckpoint, syntheticTaehvWeights } from '../../src/decode/taehv/weights.js';
import type { ModelWeights } from '../../src/model/weights.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'taehv-small.safetensors');
const SHAPE: TaehvShape = { latentChannels: 16, channels: [8, 8, 4, 4], latentHeight: 3, latentWidth: 4 };
const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-taehv-'));

async function readFixture(): Promise<{ latents: Float32Array; frames: Float32Array; frameDims: number[] }> {
  const file = await SafetensorsFile.open(fixture);
  try {
    const latents = await file.read('test.latents');
    const frames = await file.read('test.frames');
    return { latents: latents.data, frames: frames.data, frameDims: frames.shape };
  } finally {
    await file.close();
  }
}

/** Latent frames [from, to) of a [C, T, H, W] latent, as their own [C, to - from, H, W]. */
function framesOf(latent: Float32Array, shape: TaehvShape, T: number, from: number, to: number): Float32Array {
  const plane = shape.latentHeight * shape.latentWidth;
  const out = new Float32Array(shape.latentChannels * (to - from) * plane);
  for (let c = 0; c < shape.latentChannels; c++) out.set(latent.subarray((c * T + from) * plane, (c * T + to) * plane), c * (to - from) * plane);
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function runtime(weights: ModelWeights, output: 'rgb24' | 'float', shape = SHAPE): Promise<TaehvRuntime> {
  return TaehvRuntime.create({ shape, weights, provider: 'cpu', dtype: 'float32', threads: 1, output });
}

async function decodeInBlocks(rt: TaehvRuntime, latent: Float32Array, T: number, sizes: number[], shape = SHAPE): Promise<{ data: number[]; counts: number[] }> {
  const data: number[] = [];
  const counts: number[] = [];
  let at = 0;
  for (const n of sizes) {
    const block = await rt.decode(framesOf(latent, shape, T, at, at + n));
    counts.push(block.frames);
    for (const v of block.data) data.push(v);
    at += n;
  }
  assert.is(at, T);
  return { data, counts };
}

test('ONNX (CPU) decodes block by block what the PyTorch reference decodes from the whole clip (float, within 1e-5)', async () => {
  const { latents, frames, frameDims } = await readFixture();
  assert.equal(frameDims, [21, 3, 24, 32]);
  const rt = await runtime(await loadTaehvCheckpoint(fixture, SHAPE), 'float');
  try {
    const { data, counts } = await decodeInBlocks(rt, latents, 6, [3, 3]);
    assert.equal(counts, [9, 12]);
    assert.ok(maxAbsDiff(data, frames) < 1e-5, `max abs diff ${maxAbsDiff(data, frames)}`);
    // not a trivial picture: most values strictly inside (0, 1)
    assert.ok(frames.filter((v) => v > 0 && v < 1).length > 0.75 * frames.length);
  } finally {
    await rt.close();
  }
});

test('RGB24 output: interleaved bytes, each within one level of the reference value * 255', async () => {
  const { latents, frames } = await readFixture();
  const rt = await runtime(await loadTaehvCheckpoint(fixture, SHAPE), 'rgb24');
  try {
    const { data, counts } = await decodeInBlocks(rt, latents, 6, [3, 3]);
    assert.equal(counts, [9, 12]);
    assert.is(rt.width, 32);
    assert.is(rt.height, 24);
    const [N, H, W] = [21, 24, 32];
    let worst = 0;
    for (let f = 0; f < N; f++) {
      for (let ch = 0; ch < 3; ch++) {
        for (let p = 0; p < H * W; p++) {
          worst = Math.max(worst, Math.abs(data[(f * H * W + p) * 3 + ch] - frames[(f * 3 + ch) * H * W + p] * 255));
        }
      }
    }
    assert.ok(worst <= 0.5 + 1e-3, `worst byte error ${worst}`);
  } finally {
    await rt.close();
  }
});

test('streaming equals the whole clip whatever the block sizes (synthetic weights, 4 blocks, within 1e-5)', async () => {
  const shape: TaehvShape = { latentChannels: 16, channels: [16, 8, 8, 4], latentHeight: 2, latentWidth: 3 };
  const weights = syntheticTaehvWeights(shape, 5);
  const T = 9;
  const latent = new Float32Array(16 * T * 6).map((_, i) => Math.sin(i * 0.37) * 2);
  const rt = await runtime(weights, 'float', shape);
  try {
    const whole = await decodeInBlocks(rt, latent, T, [T], shape);
    assert.equal(whole.counts, [4 * T - 3]);
    rt.reset();
    const blocks = await decodeInBlocks(rt, latent, T, [3, 3, 2, 1], shape);
    assert.equal(blocks.counts, [9, 12, 8, 4]);
    assert.ok(maxAbsDiff(blocks.data, whole.data) < 1e-5, `max abs diff ${maxAbsDiff(blocks.data, whole.data)}`);
    // the memory matters: a later block decoded as a stream's first one differs
    rt.reset();
    const alone = await rt.decode(framesOf(latent, shape, T, 3, 6));
    assert.is(alone.frames, 9);
    const carried = blocks.data.slice(9 * 3 * 16 * 24 + 3 * 3 * 16 * 24, 21 * 3 * 16 * 24);
    assert.ok(maxAbsDiff(Array.from(alone.data), carried) > 1e-3);
  } finally {
    await rt.close();
  }
});

test('reset(): the next block starts a new stream (first-block frame count, same frames as the first time)', async () => {
  const weights = await loadTaehvCheckpoint(fixture, SHAPE);
  const { latents } = await readFixture();
  const rt = await runtime(weights, 'rgb24');
  try {
    const a = await rt.decode(framesOf(latents, SHAPE, 6, 0, 3));
    const b = await rt.decode(framesOf(latents, SHAPE, 6, 3, 6));
    assert.equal([a.frames, b.frames], [framesOfBlock(3, true), framesOfBlock(3, false)]);
    const firstAgain = Array.from(a.data);
    rt.reset();
    const c = await rt.decode(framesOf(latents, SHAPE, 6, 0, 3));
    assert.is(c.frames, 9);
    assert.equal(Array.from(c.data), firstAgain);
  } finally {
    await rt.close();
  }
});

test('the float16 graphs (what WebGPU runs) decode two blocks within 5e-3 of float32, the memory carried in float16', async () => {
  const weights = await loadTaehvCheckpoint(fixture, SHAPE);
  const { latents } = await readFixture();
  const decodeTwo = async (dtype: 'float32' | 'float16'): Promise<Float32Array[]> => {
    const first = await ort.InferenceSession.create(buildTaehvGraph(SHAPE, weights, { dtype, first: true, output: 'float' }).serialize());
    const next = await ort.InferenceSession.create(buildTaehvGraph(SHAPE, weights, { dtype, first: false, output: 'float' }).serialize());
    try {
      const feed = (b: number) => new ort.Tensor('float32', framesOf(latents, SHAPE, 6, 3 * b, 3 * b + 3), [1, 16, 3, 3, 4]);
      const a = await first.run({ [TAEHV_IO.latent]: feed(0) });
      const state = Object.fromEntries(Array.from({ length: 9 }, (_, m) => [TAEHV_IO.state(m), a[TAEHV_IO.stateOut(m)]]));
      assert.is(state[TAEHV_IO.state(8)].type, dtype);
      const b = await next.run({ [TAEHV_IO.latent]: feed(1), ...state });
      return [a[TAEHV_IO.frames].data as Float32Array, b[TAEHV_IO.frames].data as Float32Array];
    } finally {
      await first.release();
      await next.release();
    }
  };
  const f32 = await decodeTwo('float32');
  const f16 = await decodeTwo('float16');
  for (let i = 0; i < 2; i++) {
    const d = maxAbsDiff(f16[i], f32[i]);
    assert.ok(d < 5e-3 && d > 0, `block ${i}: max abs diff ${d}`);
  }
});

test('synthetic weights: every published key at the configured shape, seeded', () => {
  const shape = { latentChannels: 16, channels: [256, 128, 64, 64] as const };
  const expected = expectedShapes(shape);
  assert.is(expected.size, 64);
  assert.equal(expected.get('decoder.3.conv.0.weight'), [256, 512, 3, 3]);
  assert.equal(expected.get('decoder.13.conv.weight'), [256, 128, 1, 1]);
  assert.equal(expected.get('decoder.19.conv.weight'), [128, 64, 1, 1]);
  const small = { latentChannels: 16, channels: [8, 8, 4, 4] as const };
  const a = syntheticTaehvWeights(small, 1);
  const b = syntheticTaehvWeights(small, 1);
  const c = syntheticTaehvWeights(small, 2);
  assert.equal([...a.keys()], [...expectedShapes(small).keys()]);
  assert.equal(a.get('decoder.9.conv.2.weight')!.data, b.get('decoder.9.conv.2.weight')!.data);
  assert.not.equal(a.get('decoder.9.conv.2.weight')!.data, c.get('decoder.9.conv.2.weight')!.data);
});

async function writeWeights(name: string, weights: ModelWeights): Promise<string> {
  const file = path.join(dir, name);
  await writeSafetensors(file, weights);
  return file;
}

async function shapeError(file: string): Promise<Error & { code?: string }> {
  try {
    await loadTaehvCheckpoint(file, SHAPE);
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected the checkpoint to be refused');
}

test('a checkpoint with a missing or wrongly shaped key is refused with ERR_MODEL_SHAPE naming the key', async () => {
  const good = syntheticTaehvWeights(SHAPE, 3);
  const missing = new Map(good);
  missing.delete('decoder.10.conv.2.bias');
  const e1 = await shapeError(await writeWeights('missing.safetensors', missing));
  assert.is(e1.code, 'ERR_MODEL_SHAPE');
  assert.match(e1.message, /missing key 'decoder\.10\.conv\.2\.bias'/);

  const wrong = new Map(good);
  wrong.set('decoder.14.weight', { shape: [4, 4, 3, 3], data: new Float32Array(144) });
  const e2 = await shapeError(await writeWeights('wrong.safetensors', wrong));
  assert.is(e2.code, 'ERR_MODEL_SHAPE');
  assert.match(e2.message, /'decoder\.14\.weight' has shape \[4, 4, 3, 3\], expected \[4, 8, 3, 3\]/);
  assert.match(e2.message, /decoder\.taehv\.channels \[8, 8, 4, 4\]/);

  const e3 = await shapeError(path.join(dir, 'does-not-exist.pth'));
  assert.is(e3.code, 'ERR_MODEL_FILE');
});

test('the published .pth format (torch.save zip) loads the same weights as the .safetensors', async () => {
  const fromPth = await loadTaehvCheckpoint(fixture.replace('.safetensors', '.pth'), SHAPE);
  const fromSafetensors = await loadTaehvCheckpoint(fixture, SHAPE);
  assert.equal([...fromPth.keys()], [...fromSafetensors.keys()]);
  for (const [key, t] of fromSafetensors) {
    assert.equal(fromPth.get(key)!.shape, t.shape, key);
    assert.equal(fromPth.get(key)!.data, t.data, key);
  }
});

test('checkpoint layouts: encoder keys ignored, a `vae.` prefix accepted, a TGrow stored with more rows uses its last ones', async () => {
  const good = syntheticTaehvWeights(SHAPE, 3);
  const prefixed: ModelWeights = new Map([['vae.encoder.0.weight', { shape: [2], data: new Float32Array(2) }]]);
  for (const [k, v] of good) prefixed.set(`vae.${k}`, v);
  const wide = good.get('decoder.7.conv.weight')!; // [8, 8, 1, 1], stride 1
  const rows = new Float32Array(128).map((_, i) => i);
  prefixed.set('vae.decoder.7.conv.weight', { shape: [16, 8, 1, 1], data: rows });
  const loaded = await loadTaehvCheckpoint(await writeWeights('prefixed.safetensors', prefixed), SHAPE);
  assert.is(loaded.size, 64);
  assert.equal(loaded.get('decoder.7.conv.weight')!.shape, wide.shape);
  assert.equal(Array.from(loaded.get('decoder.7.conv.weight')!.data), Array.from(rows.slice(64)));
  assert.equal(loaded.get('decoder.22.bias')!.data, good.get('decoder.22.bias')!.data);
});

test.run();
