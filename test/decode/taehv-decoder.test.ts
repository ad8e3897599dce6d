/** `decoder.kind: taehv` through createDecoder: in its worker thread, frame counts, reset, runtime choice, bad weights. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { createDecoder, decoderProvider, videoFramesOfBlock } from '../../src/decode/decoder.js';
import { TaehvDecoder } from '../../src/decode/taehv/taehv-decoder.js';
import { syntheticTaehvWeights } from '../../src/decode/taehv/weights.js';
import { writeSafetensors } from '../../src/model/safetensors.js';

const tiny = (decoder: ConfigInput['decoder'] = {}, engine: ConfigInput['engine'] = {}) =>
  configSchema.parse({
    model: { arch: { latentChannels: 16 }, latentHeight: 2, latentWidth: 3 },
    decoder: { kind: 'taehv', taehv: { channels: [8, 8, 4, 4] }, syntheticSeed: 4, ...decoder },
    engine: { threads: 1, ...engine },
  });

const latentOf = (frames: number, phase: number): Float32Array => new Float32Array(16 * frames * 6).map((_, i) => Math.cos(i * 0.21 + phase) * 1.7);

test('createDecoder(taehv) runs in a worker: 9 then 12 frames of 8x the latent size, the same bytes as in-process, reset starts over', async () => {
  const config = tiny();
  const decoder = await createDecoder(config);
  assert.ok(decoder);
  const local = await TaehvDecoder.open({
    shape: { latentChannels: 16, channels: [8, 8, 4, 4], latentHeight: 2, latentWidth: 3 },
    weights: 'synthetic',
    syntheticSeed: 4,
    provider: 'cpu',
    dtype: 'float32',
    threads: 1,
  });
  try {
    assert.is(decoder!.kind, 'taehv');
    assert.equal([decoder!.width, decoder!.height], [24, 16]);
    assert.equal([decoder!.framesForFirstLatentFrame, decoder!.framesPerLatentFrame], [1, 4]);
    assert.equal([videoFramesOfBlock(decoder!, 3, 0), videoFramesOfBlock(decoder!, 3, 1)], [9, 12]);
    const a = latentOf(3, 0);
    const b = latentOf(3, 1);
    const first = await decoder!.decode(a);
    const second = await decoder!.decode(b);
    assert.equal([first.length, second.length], [9, 12]);
    for (const f of [...first, ...second]) assert.is(f.length, 24 * 16 * 3);
    assert.equal((await local.decode(a)).map((f) => Array.from(f)), first.map((f) => Array.from(f)));
    assert.equal((await local.decode(b)).map((f) => Array.from(f)), second.map((f) => Array.from(f)));
    await decoder!.reset();
    const again = await decoder!.decode(a);
    assert.equal(again.map((f) => Array.from(f)), first.map((f) => Array.from(f)));
  } finally {
    await decoder!.close();
    await local.close();
  }
  await decoder!.close(); // idempotent
  try {
    await decoder!.decode(latentOf(3, 0));
    assert.unreachable('decode after close');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_CLOSED');
  }
});

test('decoder.runtime: auto follows the ORT engine; the native engine (or runtime native) falls back to WebGPU and says so', () => {
  const lines: string[] = [];
  const info = (l: string) => lines.push(l);
  assert.is(decoderProvider(tiny({}, { name: 'ort', provider: 'cpu' }), info), 'cpu');
  assert.is(decoderProvider(tiny({}, { name: 'ort', provider: 'webgpu' }), info), 'webgpu');
  assert.is(decoderProvider(tiny({ runtime: 'cpu' }, { name: 'native' }), info), 'cpu');
  assert.is(lines.length, 0);
  assert.is(decoderProvider(tiny({}, { name: 'native' }), info), 'webgpu');
  assert.is(decoderProvider(tiny({ runtime: 'native' }), info), 'webgpu');
  assert.is(lines.length, 2);
  assert.match(lines[0], /no native taehv decoder yet.*WebGPU/);
});

test('a bad weights file fails createDecoder with its code from the worker: ERR_MODEL_SHAPE naming the key, ERR_MODEL_FILE', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-taehv-decoder-'));
  const weights = syntheticTaehvWeights({ latentChannels: 16, channels: [8, 8, 4, 4] }, 0);
  weights.delete('decoder.16.conv.4.weight');
  const file = path.join(dir, 'taew-broken.safetensors');
  await writeSafetensors(file, weights);
  const codeAndMessage = async (config: ReturnType<typeof tiny>) => {
    try {
      await createDecoder(config);
    } catch (e) {
      return { code: (e as { code?: string }).code, message: (e as Error).message };
    }
    throw new Error('expected createDecoder to fail');
  };
  const missing = await codeAndMessage(tiny({ weights: file }));
  assert.is(missing.code, 'ERR_MODEL_SHAPE');
  assert.match(missing.message, /decoder\.16\.conv\.4\.weight/);
  const absent = await codeAndMessage(tiny({ weights: path.join(dir, 'nope.pth') }));
  assert.is(absent.code, 'ERR_MODEL_FILE');
});

test.run();
