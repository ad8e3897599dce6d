import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseSentencePieceModel, readSentencePieceModel } from '../../src/text/sentencepiece-model.js';
import { SentencePieceTokenizer } from '../../src/text/sentencepiece.js';
import { cleanPrompt, collapseWhitespace, fixText, unescapeHtml } from '../../src/text/prompt-clean.js';
import { Umt5Tokenizer } from '../../src/text/umt5-tokenizer.js';

// Fixtures: tools/reference/make_umt5_tokenizer_fixture.py (SentencePiece 0.1.97's own encoder).
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const expected = JSON.parse(readFileSync(path.join(fixtures, 'umt5-tiny-tokens.json'), 'utf8')) as {
  models: Record<string, { pieces: number; cases: { text: string; ids: number[] }[] }>;
  clean: { text: string; cleaned: string }[];
};

for (const [file, reference] of Object.entries(expected.models)) {
  test(`${file}: the same ids as SentencePiece for every reference text`, async () => {
    const where = path.join(fixtures, file);
    const tokenizer = new SentencePieceTokenizer(await readSentencePieceModel(where), where);
    assert.is(tokenizer.size, reference.pieces);
    for (const c of reference.cases) assert.equal(tokenizer.encode(c.text), c.ids, JSON.stringify(c.text));
  });
}

test('the fixtures exercise byte fallback, unknown runs, the user-defined piece and NFKC', async () => {
  const bytes = new SentencePieceTokenizer(await readSentencePieceModel(path.join(fixtures, 'umt5-tiny-bytefallback.model')), 'bf');
  const byteIds = new Set(bytes.model.pieces.flatMap((p, id) => (p.type === 'byte' ? [id] : [])));
  assert.ok(bytes.encode('emoji 🐱').some((id) => byteIds.has(id)), 'an emoji falls back to bytes');
  const userId = bytes.model.pieces.findIndex((p) => p.piece === '<extra_id_0>');
  assert.ok(bytes.encode('a<extra_id_0>b').includes(userId));
  assert.equal(bytes.encode('ＡＢＣ'), bytes.encode('ABC'), 'full-width letters normalize to ASCII');
  const unk = new SentencePieceTokenizer(await readSentencePieceModel(path.join(fixtures, 'umt5-tiny-unk.model')), 'unk');
  assert.equal(unk.encode('🐱🐶').filter((id) => id === unk.model.unkId).length, 1, 'a run of unknown characters is one <unk>');
});

test("HTML unescaping and whitespace as Python's html.unescape and re \\s", () => {
  for (const c of expected.clean) assert.is(collapseWhitespace(unescapeHtml(unescapeHtml(c.text))), c.cleaned, JSON.stringify(c.text));
});

test("ftfy's fixes: quotes, ligatures, width, controls, C1 as Windows-1252, terminal escapes", () => {
  assert.is(fixText('“a” ‘b’'), '"a" \'b\'');
  assert.is(fixText('ﬁne ﬂow'), 'fine flow');
  assert.is(fixText('ＡＢＣ１'), 'ABC1');
  assert.is(fixText('a\u0007b\ufeffc'), 'abc');
  assert.is(fixText('\x93quoted\x94'), '"quoted"');
  assert.is(fixText('\x1b[31mred\x1b[0m'), 'red');
  assert.is(fixText('cafe\u0301'), 'caf\u00e9');
  assert.is(cleanPrompt('  Tom &amp;amp; “Jerry”\n\n run  '), 'Tom & "Jerry" run');
});

test('umT5 wrapping: EOS appended, truncation keeps room for it, literal specials are their ids', async () => {
  const tokenizer = await Umt5Tokenizer.open(path.join(fixtures, 'umt5-tiny-bytefallback.model'));
  const plain = tokenizer.pieces.encode('a red fox');
  assert.equal(tokenizer.encode('a red fox', 512), [...plain, 1]);
  assert.equal(tokenizer.encode('  a   red\tfox ', 512), [...plain, 1], 'cleaned first');
  assert.equal(tokenizer.encode('', 512), [1]);
  const long = tokenizer.encode('x'.repeat(200), 8);
  assert.is(long.length, 8);
  assert.is(long[7], 1);
  assert.equal(long.slice(0, 7), tokenizer.pieces.encode('x'.repeat(200)).slice(0, 7));
  const unknown = tokenizer.encode('a 🐱🐶', 512);
  assert.equal(unknown.slice(-2), [2, 1], "byte fallback off by default (HuggingFace's fast T5 tokenizer): one <unk> for the run");
  const bytes = await Umt5Tokenizer.open(path.join(fixtures, 'umt5-tiny-bytefallback.model'), { byteFallback: true });
  assert.equal(bytes.encode('a 🐱🐶', 512), [...bytes.pieces.encode('a 🐱🐶'), 1]);
  assert.ok(bytes.encode('a 🐱🐶', 512).length > 8);
  const withEos = tokenizer.encode('a</s>b', 512);
  assert.equal(withEos, [...tokenizer.pieces.encode('a'), 1, ...tokenizer.pieces.encode('b'), 1]);
});

test('not a SentencePiece model, a missing file: ERR_MODEL_FILE naming the file', async () => {
  try {
    parseSentencePieceModel(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 'junk.model');
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_MODEL_FILE');
    assert.match((e as Error).message, 'junk.model');
  }
  try {
    await Umt5Tokenizer.open(path.join(fixtures, 'nope.model'));
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_MODEL_FILE');
    assert.match((e as Error).message, 'nope.model');
  }
});

test.run();
