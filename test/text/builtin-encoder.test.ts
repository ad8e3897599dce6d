import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { createPromptEncoder } from '../../src/text/prompt-encoder.js';
import { BuiltinPromptEncoder, loadVocabulary, textPositions } from '../../src/text/builtin-encoder.js';
import { DEMO_VOCABULARY } from '../../src/text/demo-vocabulary.js';
import { splitWords } from '../../src/text/word-tokenizer.js';
import { syntheticTextTable } from '../../src/model/synthetic.js';
import { TEXT_EMBEDDING_KEY, TEXT_NEIGHBOUR_KEYS } from '../../src/model/expected-shapes.js';
import { SinkstreamError } from '../../src/errors.js';
import type { ModelWeights } from '../../src/model/weights.js';

const textDim = 6;
const textLen = 5;

function throwsCode(fn: () => unknown, code: string): SinkstreamError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SinkstreamError, String(e));
    assert.is((e as SinkstreamError).code, code);
    return e as SinkstreamError;
  }
  throw new Error('expected a throw');
}

test('splitWords: lowercase, anything not a letter separates', () => {
  assert.equal(splitWords('A Red-circle,  on\tthe 3rd  BACKGROUND!'), ['a', 'red', 'circle', 'on', 'the', 'rd', 'background']);
  assert.equal(splitWords('  ...  '), []);
});

test('demo vocabulary: the documented words in the documented order', () => {
  assert.is(DEMO_VOCABULARY.length, 38);
  assert.equal(DEMO_VOCABULARY.slice(0, 8), ['a', 'an', 'and', 'on', 'the', 'with', 'in', 'over']);
  assert.is(DEMO_VOCABULARY.indexOf('red'), 12);
  assert.is(DEMO_VOCABULARY.indexOf('circle'), 28);
  assert.equal(DEMO_VOCABULARY.slice(-4), ['background', 'small', 'large', 'big']);
});

test('rows = table[token] + PE(i) exactly; rows past the prompt are zero', () => {
  const vocab = ['red', 'circle', 'blue'];
  const table = { shape: [3, textDim], data: Float32Array.from({ length: 3 * textDim }, (_, i) => i * 0.25 - 1) };
  const enc = new BuiltinPromptEncoder(vocab, textLen, textDim, table);
  const out = enc.encode('Blue circle, blue');
  assert.is(out.length, textLen * textDim);
  const tokens = [2, 1, 2];
  for (let i = 0; i < textLen; i++) {
    for (let j = 0; j < textDim; j++) {
      const k = Math.floor(j / 2);
      const angle = i / 10000 ** ((2 * k) / textDim);
      const pe = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
      const expected = i < tokens.length ? Math.fround(table.data[tokens[i] * textDim + j] + pe) : 0;
      assert.is(out[i * textDim + j], expected, `row ${i} col ${j}`);
    }
  }
  // PE(0) = [0, 1, 0, 1, ...]
  assert.equal([...textPositions(1, 4)], [0, 1, 0, 1]);
});

test('with neighbour tables, row i adds previous[token i-1] and next[token i+1] exactly', () => {
  const vocab = ['red', 'circle', 'blue'];
  const filled = (scale: number) => ({ shape: [3, textDim], data: Float32Array.from({ length: 3 * textDim }, (_, i) => (i + 1) * scale) });
  const table = filled(0.25);
  const previous = filled(0.001);
  const next = filled(-0.03);
  const enc = new BuiltinPromptEncoder(vocab, textLen, textDim, table, { previous, next });
  const plain = new BuiltinPromptEncoder(vocab, textLen, textDim, table);
  const tokens = [2, 1, 0];
  const out = enc.encode('blue circle red');
  const pe = textPositions(textLen, textDim);
  for (let i = 0; i < textLen; i++) {
    for (let j = 0; j < textDim; j++) {
      let expected = 0;
      if (i < tokens.length) {
        expected = table.data[tokens[i] * textDim + j] + pe[i * textDim + j];
        if (i > 0) expected += previous.data[tokens[i - 1] * textDim + j];
        if (i + 1 < tokens.length) expected += next.data[tokens[i + 1] * textDim + j];
      }
      assert.is(out[i * textDim + j], Math.fround(expected), `row ${i} col ${j}`);
    }
  }
  // the word order now matters: the same words in another order give other rows
  assert.not.equal([...enc.encode('red circle blue').subarray(textDim, 2 * textDim)], [...enc.encode('blue circle red').subarray(textDim, 2 * textDim)]);
  assert.equal([...plain.encode('red circle blue').subarray(textDim, 2 * textDim)], [...plain.encode('blue circle red').subarray(textDim, 2 * textDim)]);
  const wrong = { shape: [2, textDim], data: new Float32Array(2 * textDim) };
  const e = throwsCode(() => new BuiltinPromptEncoder(vocab, textLen, textDim, table, { previous, next: wrong }), 'ERR_MODEL_SHAPE');
  assert.ok(e.message.includes(TEXT_NEIGHBOUR_KEYS[1]) && e.message.includes('[2, 6]'), e.message);
});

test('createPromptEncoder: the neighbour tables from the checkpoint, as a pair', async () => {
  const config = configSchema.parse({ model: { arch: { textDim, textLen }, syntheticSeed: 9 }, text: { vocab: '["red","circle"]' } });
  const ones = (v: number) => ({ shape: [2, textDim], data: new Float32Array(2 * textDim).fill(v) });
  const weights: ModelWeights = new Map([[TEXT_EMBEDDING_KEY, ones(0.5)], [TEXT_NEIGHBOUR_KEYS[0], ones(0.25)], [TEXT_NEIGHBOUR_KEYS[1], ones(2)]]);
  const enc = await createPromptEncoder(config, weights);
  // 'red circle': row 0 = 0.5 + next 2 + PE(0, 0) = 0; row 1 = 0.5 + previous 0.25 + PE(1, 0) = sin 1
  const out = await enc.encode('red circle');
  assert.is(out[0], 2.5);
  assert.is(out[textDim], Math.fround(0.75 + Math.sin(1)));
  const half: ModelWeights = new Map([[TEXT_EMBEDDING_KEY, ones(0.5)], [TEXT_NEIGHBOUR_KEYS[1], ones(2)]]);
  try {
    await createPromptEncoder(config, half);
    assert.unreachable();
  } catch (e) {
    assert.is((e as SinkstreamError).code, 'ERR_MODEL_SHAPE');
    assert.ok((e as Error).message.includes(`has ${TEXT_NEIGHBOUR_KEYS[1]} but not ${TEXT_NEIGHBOUR_KEYS[0]}`), (e as Error).message);
  }
});

test('an unknown word is ERR_PROMPT naming it and listing the vocabulary', () => {
  const enc = new BuiltinPromptEncoder(DEMO_VOCABULARY, 16, textDim, syntheticTextTable(DEMO_VOCABULARY.length, textDim, 0));
  const e = throwsCode(() => enc.encode('a red elephant'), 'ERR_PROMPT');
  assert.ok(e.message.includes("'elephant'"), e.message);
  for (const w of DEMO_VOCABULARY) assert.ok(e.message.includes(w), `vocabulary word ${w} not listed`);
});

test('a prompt longer than textLen is ERR_PROMPT', () => {
  const enc = new BuiltinPromptEncoder(['red'], 2, textDim, syntheticTextTable(1, textDim, 0));
  const e = throwsCode(() => enc.encode('red red red'), 'ERR_PROMPT');
  assert.ok(e.message.includes('model.arch.textLen'), e.message);
});

test('createPromptEncoder: checkpoint table if present, else the seeded synthetic table', async () => {
  const config = configSchema.parse({ model: { arch: { textDim, textLen }, syntheticSeed: 9 }, text: { vocab: '["red","circle"]' } });
  const synthetic = await createPromptEncoder(config, new Map());
  const expectedRow0 = syntheticTextTable(2, textDim, 9).data[textDim + 1] + 1; // 'circle', col 1, PE(0,1) = cos 0 = 1
  assert.is((await synthetic.encode('circle'))[1], Math.fround(expectedRow0));
  const weights: ModelWeights = new Map([[TEXT_EMBEDDING_KEY, { shape: [2, textDim], data: new Float32Array(2 * textDim).fill(0.5) }]]);
  const fromWeights = await createPromptEncoder(config, weights);
  assert.is((await fromWeights.encode('circle'))[0], 0.5);
  const wrong: ModelWeights = new Map([[TEXT_EMBEDDING_KEY, { shape: [3, textDim], data: new Float32Array(3 * textDim) }]]);
  try {
    await createPromptEncoder(config, wrong);
    assert.unreachable();
  } catch (e) {
    assert.is((e as SinkstreamError).code, 'ERR_MODEL_SHAPE');
  }
});

test('the default prompt encodes with the demo vocabulary', async () => {
  const config = configSchema.parse({});
  const enc = await createPromptEncoder(config, new Map());
  const out = await enc.encode(config.generation.prompt);
  assert.is(out.length, config.model.arch.textLen * config.model.arch.textDim);
});

test('loadVocabulary: inline JSON, bad entries refused', () => {
  assert.equal(loadVocabulary('["x","y"]'), ['x', 'y']);
  assert.equal(loadVocabulary(undefined), [...DEMO_VOCABULARY]);
  throwsCode(() => loadVocabulary('["x","x"]'), 'ERR_CONFIG_INVALID');
  throwsCode(() => loadVocabulary('["Red"]'), 'ERR_CONFIG_INVALID');
  throwsCode(() => loadVocabulary('[1]'), 'ERR_CONFIG_INVALID');
  throwsCode(() => loadVocabulary('/nonexistent/vocab.json'), 'ERR_MODEL_FILE');
});

test.run();
