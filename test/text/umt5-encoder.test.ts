import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { umt5Bucket } from '../../src/text/umt5-graph.js';
import { Umt5Runtime } from '../../src/text/umt5-runtime.js';
import { Umt5Tokenizer } from '../../src/text/umt5-tokenizer.js';
import { checkUmt5Keys, loadUmt5Weights, syntheticUmt5Weights, umt5Shapes, type Umt5Arch } from '../../src/text/umt5-weights.js';

// Fixture: tools/reference/make_umt5_encoder_fixture.py (PyTorch reference tools/reference/umt5.py,
// float32, the same synthetic weights).
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const reference = JSON.parse(readFileSync(path.join(fixtures, 'umt5-tiny-encoder.json'), 'utf8')) as {
  arch: Omit<Umt5Arch, 'eps'>;
  seed: number;
  textLen: number;
  bucketsByOffset: { from: number; buckets: number[] };
  cases: { prompt?: string; ids: number[]; rows: number[]; context: number[] }[];
};
const arch: Umt5Arch = { ...reference.arch, eps: 1e-6 };
/** float32 ONNX Runtime against float32 PyTorch, values of unit scale. */
const TOLERANCE = 2e-5;

function maxError(got: Float32Array, rows: number[], want: number[]): number {
  let worst = 0;
  rows.forEach((row, r) => {
    for (let c = 0; c < arch.dim; c++) worst = Math.max(worst, Math.abs(got[row * arch.dim + c] - want[r * arch.dim + c]));
  });
  return worst;
}

test('relative-position buckets equal PyTorch float32 for offsets -299..299', () => {
  const { from, buckets } = reference.bucketsByOffset;
  buckets.forEach((want, i) => assert.is(umt5Bucket(from + i, arch.buckets, arch.maxDistance), want, `offset ${from + i}`));
});

test(`encoder graph on ONNX Runtime equals the PyTorch reference (max |error| < ${TOLERANCE}), padding rows zero`, async () => {
  const tokenizer = await Umt5Tokenizer.open(path.join(fixtures, 'umt5-tiny-bytefallback.model'));
  const runtime = await Umt5Runtime.create({ arch, weights: syntheticUmt5Weights(arch, reference.seed), tokenizer, textLen: reference.textLen, provider: 'cpu', threads: 1 });
  try {
    const [short, long] = reference.cases;
    assert.equal(runtime.tokenize(short.prompt!), short.ids, 'the tokenizer gives the reference ids');
    const context = await runtime.encode(short.prompt!);
    assert.is(context.length, reference.textLen * arch.dim);
    const error = maxError(context, short.rows, short.context);
    assert.ok(error < TOLERANCE, `prompt: max |error| ${error}`);
    assert.ok(context.subarray(short.ids.length * arch.dim).every((v) => v === 0), 'rows past the tokens are zero');
    const longRows = await runtime.run(long.ids); // 200 tokens: offsets past maxDistance
    const longError = maxError(longRows, long.rows, long.context);
    assert.ok(longError < TOLERANCE, `200 tokens: max |error| ${longError}`);
  } finally {
    await runtime.close();
  }
});

/** float32 -> bfloat16 -> float32, round to nearest even (torch's .bfloat16()). */
function bf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return new Float32Array(u.buffer)[0];
}

test("a .pth saved as Wan's umT5 checkpoint (bf16 state dict, torch.save) loads with every key and value", async () => {
  const micro: Umt5Arch = { dim: 16, layers: 1, heads: 2, ffnDim: 32, vocab: 40, buckets: 32, maxDistance: 128, eps: 1e-6 };
  const loaded = await loadUmt5Weights(path.join(fixtures, 'umt5-micro-enc-bf16.pth'), micro, 0);
  const synthetic = syntheticUmt5Weights(micro, reference.seed);
  assert.equal([...loaded.keys()].sort(), [...synthetic.keys()].sort());
  for (const [key, w] of synthetic) {
    assert.equal(loaded.get(key)!.shape, w.shape, key);
    assert.ok(loaded.get(key)!.data.every((v, i) => v === bf16(w.data[i])), key);
  }
  try {
    await loadUmt5Weights(path.join(fixtures, 'umt5-micro-enc-bf16.pth'), arch, 0);
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_MODEL_SHAPE');
  }
});

test('a checkpoint of another shape: the first unexpected or mismatched key is named', () => {
  const shapes = umt5Shapes(arch);
  const keys = [...shapes.keys()];
  const shapeOf = (k: string) => shapes.get(k) ?? [3];
  assert.not.throws(() => checkUmt5Keys(keys, shapeOf, arch, 'enc.safetensors'));
  assert.throws(() => checkUmt5Keys([...keys, 'blocks.2.norm1.weight'], shapeOf, arch, 'enc.safetensors'), /unexpected tensor 'blocks\.2\.norm1\.weight' \[3\]/);
  assert.throws(() => checkUmt5Keys(keys.filter((k) => k !== 'norm.weight'), shapeOf, arch, 'enc.safetensors'), /missing tensor 'norm\.weight'/);
  assert.throws(() => checkUmt5Keys(keys, (k) => (k === 'blocks.1.attn.q.weight' ? [64, 32] : shapes.get(k)!), arch, 'enc.safetensors'), /'blocks\.1\.attn\.q\.weight' has shape \[64, 32\]/);
});

test.run();
