import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { createDecoder } from '../../src/decode/decoder.js';
import { SinkstreamError } from '../../src/errors.js';

async function codeOf(p: Promise<unknown>): Promise<SinkstreamError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SinkstreamError);
    return e as SinkstreamError;
  }
  throw new Error('expected a rejection');
}

test('space-to-depth: frame size from latent size and factor', async () => {
  const decoder = await createDecoder(configSchema.parse({ model: { arch: { latentChannels: 12 }, latentHeight: 6, latentWidth: 10 }, decoder: { factor: 2 } }));
  assert.ok(decoder);
  assert.is(decoder!.width, 20);
  assert.is(decoder!.height, 12);
  assert.is(decoder!.framesPerLatentFrame, 1);
});

test('space-to-depth: latentChannels must be 3 * factor^2', async () => {
  const e = await codeOf(createDecoder(configSchema.parse({ model: { arch: { latentChannels: 16 } }, decoder: { factor: 2 } })));
  assert.is(e.code, 'ERR_CONFIG_INVALID');
  assert.ok(e.message.includes('decoder.factor') && e.message.includes('model.arch.latentChannels'), e.message);
});

test('onnx: decoder.path is required; a missing file names it', async () => {
  const e = await codeOf(createDecoder(configSchema.parse({ decoder: { kind: 'onnx' } })));
  assert.is(e.code, 'ERR_CONFIG_INVALID');
  assert.ok(e.message.includes('decoder.path'));
  const e2 = await codeOf(createDecoder(configSchema.parse({ decoder: { kind: 'onnx', path: '/nonexistent/dec.onnx' } })));
  assert.is(e2.code, 'ERR_MODEL_FILE');
  assert.ok(e2.message.includes('/nonexistent/dec.onnx'));
});

test('none: no decoder', async () => {
  assert.is(await createDecoder(configSchema.parse({ decoder: { kind: 'none' } })), null);
});

test.run();
