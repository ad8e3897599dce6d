/**
 * A failed ORT engine start rejects with the error's own stable code, every time, and never as an
 * uncaught exception (the worker used to rethrow after reporting, which raced its own report).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { isSinkstreamError } from '../../src/errors.js';

const arch = { dim: 32, layers: 2, heads: 2, ffnDim: 64, latentChannels: 4, textDim: 8, textLen: 5 };

test('a missing weights file rejects with ERR_MODEL_FILE on each of five starts', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-start-'));
  try {
    const missing = path.join(dir, 'absent.safetensors');
    const config = configSchema.parse({ model: { arch, latentHeight: 4, latentWidth: 6, weights: missing }, engine: { name: 'ort', provider: 'cpu', threads: 1 } });
    for (let i = 0; i < 5; i++) {
      try {
        const engine = await createEngine(config);
        await engine.close();
        assert.unreachable('the engine started without its weights');
      } catch (e) {
        assert.ok(isSinkstreamError(e), `a SinkstreamError, got ${String(e)}`);
        assert.is(e.code, 'ERR_MODEL_FILE', e.message);
        assert.ok(e.message.includes('absent.safetensors'), e.message);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('webgpu where no adapter exists is ERR_ENGINE_UNAVAILABLE (or starts, where a GPU is present)', async () => {
  const config = configSchema.parse({ model: { arch, latentHeight: 4, latentWidth: 6, weights: 'synthetic' }, engine: { name: 'ort', provider: 'webgpu' } });
  for (let i = 0; i < 3; i++) {
    try {
      const engine = await createEngine(config);
      await engine.close();
    } catch (e) {
      assert.ok(isSinkstreamError(e), `a SinkstreamError, got ${String(e)}`);
      assert.is(e.code, 'ERR_ENGINE_UNAVAILABLE', e.message);
    }
  }
});

test.run();
