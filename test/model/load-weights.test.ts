import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { modelDims } from '../../src/model/dims.js';
import { loadTextEncoderTables, loadWeights } from '../../src/model/load-weights.js';
import { syntheticWeights, syntheticTextTable } from '../../src/model/synthetic.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { toDiffusersKey } from '../../src/model/key-names.js';
import { TEXT_EMBEDDING_KEY, TEXT_NEIGHBOUR_KEYS } from '../../src/model/expected-shapes.js';
import type { ModelWeights } from '../../src/model/weights.js';
import { assertSameWeights, rejectsWith } from '../helpers/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-weights-'));
const tiny = { arch: { dim: 16, layers: 2, heads: 2, ffnDim: 32, latentChannels: 12, textDim: 8, textLen: 4 }, latentHeight: 4, latentWidth: 4 };
const configFor = (weights: string) => configSchema.parse({ model: { ...tiny, weights, syntheticSeed: 3 } });
const dims = modelDims(configFor('synthetic'));
const reference = syntheticWeights(dims, 3);

test('synthetic: loadWeights returns the seeded weights', async () => {
  assertSameWeights(await loadWeights(configFor('synthetic')), reference, { bitExact: true });
});

test('Wan-named file with Self-Forcing wrapper loads under canonical keys', async () => {
  const file = path.join(dir, 'wan.safetensors');
  const wrapped = new Map([...reference].map(([k, t]) => [`generator_ema.model.${k}`, t]));
  for (const [k, t] of reference) wrapped.set(`generator.model.${k}`, { shape: t.shape, data: new Float32Array(t.data.length) });
  await writeSafetensors(file, wrapped);
  assertSameWeights(await loadWeights(configFor(file)), reference, { bitExact: true });
});

test('diffusers-named file loads under canonical keys, with the text table', async () => {
  const file = path.join(dir, 'diffusers.safetensors');
  const withText: ModelWeights = new Map(reference);
  withText.set(TEXT_EMBEDDING_KEY, syntheticTextTable(5, 8, 1));
  await writeSafetensors(file, new Map([...withText].map(([k, t]) => [toDiffusersKey(k), t])));
  assertSameWeights(await loadWeights(configFor(file)), withText, { bitExact: true });
});

test('a wrong shape names the key, its shape and the expected shape', async () => {
  const file = path.join(dir, 'wrong.safetensors');
  const bad: ModelWeights = new Map(reference);
  bad.set('blocks.1.ffn.0.weight', { shape: [31, 16], data: new Float32Array(31 * 16) });
  await writeSafetensors(file, bad);
  await rejectsWith(loadWeights(configFor(file)), 'ERR_MODEL_SHAPE', 'blocks.1.ffn.0.weight', '[31, 16]', '[32, 16]');
});

test('a missing key is named', async () => {
  const file = path.join(dir, 'missing.safetensors');
  const bad: ModelWeights = new Map(reference);
  bad.delete('blocks.0.cross_attn.norm_k.weight');
  await writeSafetensors(file, bad);
  await rejectsWith(loadWeights(configFor(file)), 'ERR_MODEL_SHAPE', "missing key 'blocks.0.cross_attn.norm_k.weight'", '[16]');
});

test('more layers than configured is refused', async () => {
  const file = path.join(dir, 'deeper.safetensors');
  await writeSafetensors(file, syntheticWeights({ ...dims, layers: 3 }, 0));
  await rejectsWith(loadWeights(configFor(file)), 'ERR_MODEL_SHAPE', 'blocks.2.');
});

test('missing or malformed files are ERR_MODEL_FILE naming the file', async () => {
  const missing = path.join(dir, 'nope.safetensors');
  await rejectsWith(loadWeights(configFor(missing)), 'ERR_MODEL_FILE', missing);
  const junk = path.join(dir, 'junk.safetensors');
  writeFileSync(junk, Buffer.from('this is not a safetensors file at all'));
  await rejectsWith(loadWeights(configFor(junk)), 'ERR_MODEL_FILE', junk);
});

test('loadTextEncoderTables: the table alone, under a wrapper; empty for synthetic', async () => {
  const file = path.join(dir, 'with-text.safetensors');
  const table = syntheticTextTable(5, 8, 2);
  const weights = new Map([...reference, [TEXT_EMBEDDING_KEY, table] as const].map(([k, t]) => [`model.${k}`, t] as const));
  await writeSafetensors(file, new Map(weights));
  const loaded = await loadTextEncoderTables(configFor(file));
  assert.equal([...loaded.keys()], [TEXT_EMBEDDING_KEY]);
  assert.equal([...loaded.get(TEXT_EMBEDDING_KEY)!.data], [...table.data]);
  assert.is((await loadTextEncoderTables(configFor('synthetic'))).size, 0);
});

test('the text encoder\'s neighbour tables load beside the word table; a wrong width is named', async () => {
  const file = path.join(dir, 'with-neighbours.safetensors');
  const tables = [TEXT_EMBEDDING_KEY, ...TEXT_NEIGHBOUR_KEYS].map((k, i) => [k, syntheticTextTable(5, 8, 10 + i)] as const);
  await writeSafetensors(file, new Map([...reference, ...tables]));
  const loaded = await loadTextEncoderTables(configFor(file));
  assert.equal([...loaded.keys()].sort(), [TEXT_EMBEDDING_KEY, ...TEXT_NEIGHBOUR_KEYS].sort());
  for (const [k, t] of tables) assert.equal([...loaded.get(k)!.data], [...t.data], k);
  assertSameWeights(await loadWeights(configFor(file)), new Map([...reference, ...tables]), { bitExact: true });
  const wide = path.join(dir, 'wide-neighbours.safetensors');
  await writeSafetensors(wide, new Map([...reference, ...tables, [TEXT_NEIGHBOUR_KEYS[1], syntheticTextTable(5, 9, 1)]]));
  await rejectsWith(loadWeights(configFor(wide)), 'ERR_MODEL_SHAPE', TEXT_NEIGHBOUR_KEYS[1], '[5, 9]', '[vocabSize, 8]');
});

test.run();
