/**
 * NativeTaehvDecoder (src/decode/native-taehv.ts) over an injected stand-in addon: what it hands over, its frame
 * counts, its errors' names (what every native decoder does alike is native-decoder.test.ts's), and, where the
 * CUDA addon loads, the native decoder in fp32 against the PyTorch reference's fixture (tools/reference/taehv.py
 * fixtures), streamed block by block.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../src/config/schema.js';
import { createDecoder } from '../../src/decode/decoder.js';
import { expectedShapes, type TaehvShape } from '../../src/decode/taehv/architecture.js';
import { loadTaehvCheckpoint } from '../../src/decode/taehv/weights.js';
import { NativeTaehvDecoder, nativeTaehvPrecision } from '../../src/decode/native-taehv.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { nativeDecoderStandIn, type StandInOptions } from './helpers/native-decoder-stand-in.js';
import { nativeGpuUnavailable } from '../helpers/native-gpu.js';

const standIn = (options: StandInOptions = {}) => nativeDecoderStandIn('taehv', (F) => 4 * F - 3, options);

const config = (dtype: 'float16' | 'float32') =>
  configSchema.parse({
    model: { arch: { latentChannels: 16 }, latentHeight: 2, latentWidth: 3 },
    decoder: { kind: 'taehv', taehv: { channels: [8, 8, 4, 4] }, syntheticSeed: 4, dtype, runtime: 'native' },
    engine: { name: 'native', device: 1 },
    generation: { blockFrames: 2 },
  });

test('fromConfig hands every checkpoint key to the addon, fp16 for float16, device and warm-up block from the config', async () => {
  const s = standIn();
  const d = await NativeTaehvDecoder.fromConfig(config('float16'), s.addon);
  const shape = { latentChannels: 16, channels: [8, 8, 4, 4] as const };
  assert.equal([...s.weights.keys()].sort(), [...expectedShapes(shape).keys()].sort());
  assert.equal(s.created(), { dims: { latentChannels: 16, latentHeight: 2, latentWidth: 3, channels: [8, 8, 4, 4] }, device: 1, precision: 2 });
  assert.equal(s.log, ['finalize 2']);
  assert.equal([d.width, d.height, d.framesForFirstLatentFrame, d.framesPerLatentFrame], [24, 16, 1, 4]);
  assert.is(nativeTaehvPrecision('float32'), 1);
  await d.close();
});

test('decode: frames are views of the block, 4F - 3 then 4F, calls in order even when not awaited, reset starts over', async () => {
  const s = standIn();
  const d = await NativeTaehvDecoder.fromConfig(config('float32'), s.addon);
  assert.is(s.created()!.precision, 1);
  const plane = 16 * 2 * 3;
  const a = new Float32Array(2 * plane).fill(7);
  const b = new Float32Array(2 * plane).fill(8);
  const [first, second] = await Promise.all([d.decode(a), d.decode(b)]);
  assert.not.ok(s.overlapped(), 'the second decode waited for the first');
  assert.equal(s.log.slice(1), ['decode 7 2', 'decode 8 2']);
  assert.is(first.length, 5);
  assert.is(second.length, 8);
  for (const f of [...first, ...second]) assert.is(f.length, 24 * 16 * 3);
  assert.equal(first.map((f) => f[0]), [0, 1, 2, 3, 4]);
  assert.equal(second.map((f) => f[100]), [16, 17, 18, 19, 20, 21, 22, 23]);
  assert.is(first[1].buffer, first[0].buffer);
  await d.reset();
  assert.is((await d.decode(a)).length, 5);
  await d.close();
});

test('errors name the TAEHV decoder: one the addon cannot create is ERR_ENGINE_UNAVAILABLE; a failing finalize frees the handle', async () => {
  const noCudnn = standIn({ failCreate: 'the TAEHV decoder needs cuDNN 9' });
  try {
    await NativeTaehvDecoder.fromConfig(config('float32'), noCudnn.addon);
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_ENGINE_UNAVAILABLE');
    assert.match((e as Error).message, /^native TAEHV decoder: .*needs cuDNN 9/);
  }
  const badWeights = standIn({ failFinalize: 'TAEHV weight missing: decoder.22.bias' });
  try {
    await NativeTaehvDecoder.fromConfig(config('float32'), badWeights.addon);
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_ENGINE');
    assert.match((e as Error).message, /decoder\.22\.bias/);
  }
  assert.is(badWeights.destroyed(), 1);
});

const reason = nativeGpuUnavailable();

test('createDecoder: taehv with decoder.runtime native is the native decoder, or ERR_ENGINE_UNAVAILABLE without the addon', async () => {
  const c = configSchema.parse({
    model: { arch: { latentChannels: 16 }, latentHeight: 3, latentWidth: 4 },
    decoder: { kind: 'taehv', taehv: { channels: [8, 8, 8, 8] }, runtime: 'native' },
    engine: { name: 'ort' },
  });
  const lines: string[] = [];
  try {
    const d = await createDecoder(c, { onInfo: (l) => lines.push(l) });
    assert.ok(d instanceof NativeTaehvDecoder, 'a native decoder where the addon loads');
    await d!.close();
  } catch (e) {
    if (!reason) throw e;
    assert.is((e as { code?: string }).code, 'ERR_ENGINE_UNAVAILABLE');
  }
  assert.equal(lines, []);
});

test('createDecoder: taehv with runtime auto under the native engine without the addon says so and falls back', async () => {
  if (!reason) return; // with the addon it is the native decoder (test above)
  const c = configSchema.parse({
    model: { arch: { latentChannels: 16 }, latentHeight: 2, latentWidth: 3 },
    decoder: { kind: 'taehv', taehv: { channels: [8, 8, 4, 4] } },
    engine: { name: 'native', threads: 1 },
  });
  const lines: string[] = [];
  try {
    const d = await createDecoder(c, { onInfo: (l) => lines.push(l) });
    assert.not.ok(d instanceof NativeTaehvDecoder);
    await d!.close();
  } catch {
    // the fallback's own provider may be missing here; what matters is that it was taken
  }
  assert.is(lines.length, 1, lines.join(' | '));
  assert.match(lines[0], /native taehv decoder is unavailable.*WebGPU/);
});

// ---- on a GPU ----

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'taehv-small.safetensors');
const SHAPE: TaehvShape = { latentChannels: 16, channels: [8, 8, 4, 4], latentHeight: 3, latentWidth: 4 };

test('GPU: native fp32 streamed in two blocks equals the PyTorch reference (whole clip) within one 8-bit level', async () => {
  if (reason) {
    console.log(`  skipped (GPU): ${reason}`);
    return;
  }
  const file = await SafetensorsFile.open(fixture);
  const latents = (await file.read('test.latents')).data; // [16, 6, 3, 4]
  const frames = await file.read('test.frames'); // [21, 3, 24, 32] in [0, 1]
  await file.close();
  const weights = await loadTaehvCheckpoint(fixture, SHAPE);
  const d = await NativeTaehvDecoder.open({ shape: SHAPE, weights, device: 0, precision: 1, warmupFrames: 3 });
  try {
    const plane = 12;
    const block = (from: number): Float32Array => {
      const out = new Float32Array(16 * 3 * plane);
      for (let c = 0; c < 16; c++) out.set(latents.subarray((c * 6 + from) * plane, (c * 6 + from + 3) * plane), c * 3 * plane);
      return out;
    };
    const got = [...(await d.decode(block(0))), ...(await d.decode(block(3)))];
    assert.is(got.length, 21);
    let worst = 0;
    const [, , H, W] = frames.shape;
    for (let f = 0; f < 21; f++) {
      for (let ch = 0; ch < 3; ch++) {
        for (let p = 0; p < H * W; p++) {
          const want = frames.data[(f * 3 + ch) * H * W + p] * 255;
          worst = Math.max(worst, Math.abs(got[f][p * 3 + ch] - want));
        }
      }
    }
    assert.ok(worst <= 1, `largest difference ${worst.toFixed(3)} levels`);
  } finally {
    await d.close();
  }
});

test.run();
