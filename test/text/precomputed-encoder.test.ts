import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { createPromptEncoder } from '../../src/text/prompt-encoder.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import type { WeightTensor } from '../../src/model/weights.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-text-'));
const textLen = 4;
const textDim = 3;
const configFor = (p: string, fallback?: string) =>
  configSchema.parse({ model: { arch: { textLen, textDim } }, text: { encoder: 'precomputed', path: p, ...(fallback ? { fallback } : {}) } });
const tensor = (rows: number, base: number, batch = false): WeightTensor => ({
  shape: batch ? [1, rows, textDim] : [rows, textDim],
  data: Float32Array.from({ length: rows * textDim }, (_, i) => base + i),
});

function refuses(encode: () => unknown, ...fragments: string[]): void {
  try {
    encode();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_PROMPT');
    for (const f of fragments) assert.ok((e as Error).message.includes(f), `message lacks '${f}': ${(e as Error).message}`);
    return;
  }
  assert.unreachable('expected ERR_PROMPT');
}

test('context.<name> for its prompt, zero-padded to textLen, F16 accepted; other prompts are ERR_PROMPT by default', async () => {
  const file = path.join(dir, 'ctx.safetensors');
  await writeSafetensors(file, new Map([['context', tensor(2, 1)], ['context.a cat', tensor(4, 100, true)]]), { dtype: 'F16' });
  const enc = await createPromptEncoder(configFor(file), new Map());
  assert.equal([...(await enc.encode('a cat'))], Array.from({ length: 12 }, (_, i) => 100 + i));
  refuses(() => enc.encode('anything'), file, "'anything'", "'a cat'", 'text.fallback: default-context');
});

test("text.fallback: default-context gives other prompts the plain 'context'", async () => {
  const file = path.join(dir, 'ctx-fallback.safetensors');
  await writeSafetensors(file, new Map([['context', tensor(2, 1)], ['context.a cat', tensor(4, 100, true)]]));
  const enc = await createPromptEncoder(configFor(file, 'default-context'), new Map());
  assert.equal([...(await enc.encode('anything'))], [1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0]);
  assert.equal([...(await enc.encode('a cat'))], Array.from({ length: 12 }, (_, i) => 100 + i));
});

test("the plain 'context' serves the prompt its __metadata__ records, without a fallback", async () => {
  const file = path.join(dir, 'ctx-recorded.safetensors');
  await writeSafetensors(file, new Map([['context', tensor(2, 1)]]), { metadata: { prompt: 'a dog on a beach' } });
  const enc = await createPromptEncoder(configFor(file), new Map());
  assert.equal([...(await enc.encode('a dog on a beach'))], [1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0]);
  refuses(() => enc.encode('a cat'), "'a cat'", "for the prompt 'a dog on a beach'");
});

test('named contexts only: an unknown prompt is ERR_PROMPT listing the names', async () => {
  const file = path.join(dir, 'named.safetensors');
  await writeSafetensors(file, new Map([['context.dog', tensor(1, 0)]]));
  const enc = await createPromptEncoder(configFor(file), new Map());
  refuses(() => enc.encode('cat'), "'cat'", "'dog'");
});

test('wrong width or too many rows is ERR_MODEL_SHAPE; no context tensor is ERR_MODEL_FILE; no path is ERR_CONFIG_INVALID', async () => {
  const wide = path.join(dir, 'wide.safetensors');
  await writeSafetensors(wide, new Map([['context', { shape: [2, 5], data: new Float32Array(10) }]]));
  const long = path.join(dir, 'long.safetensors');
  await writeSafetensors(long, new Map([['context', tensor(5, 0)]]));
  const none = path.join(dir, 'none.safetensors');
  await writeSafetensors(none, new Map([['other', tensor(1, 0)]]));
  for (const [file, code] of [[wide, 'ERR_MODEL_SHAPE'], [long, 'ERR_MODEL_SHAPE'], [none, 'ERR_MODEL_FILE']]) {
    try {
      await createPromptEncoder(configFor(file), new Map());
      assert.unreachable();
    } catch (e) {
      assert.is((e as { code?: string }).code, code, file);
      assert.ok((e as Error).message.includes(file));
    }
  }
  try {
    await createPromptEncoder(configSchema.parse({ text: { encoder: 'precomputed' } }), new Map());
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_CONFIG_INVALID');
  }
});

test.run();
