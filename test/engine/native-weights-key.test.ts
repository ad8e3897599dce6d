/**
 * What names the weights for sharing one copy between native engines (runs anywhere: no GPU): the synthetic
 * seed and scale, or the checkpoint's path, size and modification time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { weightsIdentity } from '../../src/engine/native/native-engine.js';

const withWeights = (weights: string, seed = 1) => configSchema.parse({ model: { weights, syntheticSeed: seed } });

test('synthetic weights: the seed names them', () => {
  assert.is(weightsIdentity(withWeights('synthetic', 1)), weightsIdentity(withWeights('synthetic', 1)));
  assert.is.not(weightsIdentity(withWeights('synthetic', 1)), weightsIdentity(withWeights('synthetic', 2)));
});

test('a checkpoint: a rewritten file is other weights; a missing one shares nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssn-weights-'));
  try {
    const file = join(dir, 'model.safetensors');
    writeFileSync(file, 'x');
    const before = weightsIdentity(withWeights(file));
    assert.match(before, file);
    assert.is(weightsIdentity(withWeights(file)), before);
    utimesSync(file, new Date(0), new Date(1_000_000));
    assert.is.not(weightsIdentity(withWeights(file)), before);
    assert.is(weightsIdentity(withWeights(join(dir, 'missing.safetensors'))), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the generator entry and the LoRA (file, scale, alpha) are part of the weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssn-weights-'));
  try {
    const file = join(dir, 'model.pt');
    const lora = join(dir, 'lora.pt');
    writeFileSync(file, 'x');
    writeFileSync(lora, 'y');
    const key = (model: Record<string, unknown>) => weightsIdentity(configSchema.parse({ model: { weights: file, ...model } }));
    const plain = key({});
    assert.is.not(key({ generatorKey: 'generator' }), plain);
    assert.is.not(key({ lora }), plain);
    assert.is(key({ lora }), key({ lora }));
    assert.is.not(key({ lora, loraScale: 0.5 }), key({ lora }));
    assert.is.not(key({ lora, loraAlpha: 8 }), key({ lora }));
    assert.is.not(weightsIdentity(configSchema.parse({ model: { weights: 'synthetic', lora } })), weightsIdentity(withWeights('synthetic', 0)));
    assert.is(key({ lora: join(dir, 'missing.pt') }), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
