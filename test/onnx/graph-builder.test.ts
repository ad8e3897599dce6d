import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { float, GraphBuilder, MS_DOMAIN } from '../../src/onnx/graph-builder.js';
import { float16ToFloat32, float32ToFloat16, fromFloat16Bits, toFloat16Bits } from '../../src/onnx/float16.js';

function smallGraph(): GraphBuilder {
  const b = new GraphBuilder('test');
  const x = b.input('x', 'float32', ['n', 4]);
  const w = b.initializer('w', 'float32', [4, 3], Float32Array.from({ length: 12 }, (_, i) => i / 10));
  const bias = b.floatConst([0.5, -1, 2], 'float32');
  const y = b.op('Add', [b.op('MatMul', [x, w]), bias]);
  b.output(b.op('FastGelu', [y], {}, { domain: MS_DOMAIN }), 'float32', ['n', 3], 'y');
  b.output(b.op('LayerNormalization', [y, b.floatConst([1, 1, 1], 'float32')], { axis: -1, epsilon: float(1e-6) }), 'float32', ['n', 3], 'ln');
  return b;
}

const x = new ort.Tensor('float32', Float32Array.from({ length: 8 }, (_, i) => Math.cos(i)), [2, 4]);

test('a serialised graph runs: MatMul + bias, com.microsoft FastGelu, LayerNormalization', async () => {
  const session = await ort.InferenceSession.create(smallGraph().serialize());
  const out = await session.run({ x });
  const xs = x.data as Float32Array;
  const w = Float32Array.from({ length: 12 }, (_, i) => i / 10);
  const row0 = [0, 1, 2].map((o) => [0, 1, 2, 3].reduce((s, i) => s + xs[i] * w[i * 3 + o], 0) + [0.5, -1, 2][o]);
  const gelu = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const y = out.y.data as Float32Array;
  row0.forEach((v, o) => assert.ok(Math.abs(y[o] - gelu(v)) < 1e-5, `y[${o}]`));
  await session.release();
});

test('external data: model.onnx + weights.bin give the same results as the inline model', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-gb-'));
  try {
    const modelPath = smallGraph().writeModel(dir, 16);
    assert.ok(statSync(path.join(dir, 'weights.bin')).size >= 48, 'the 4x3 weight went to weights.bin');
    assert.not.ok(readFileSync(modelPath).includes(Buffer.from(new Float32Array([0.1, 0.2, 0.3]).buffer)), 'not inline');
    const external = await ort.InferenceSession.create(modelPath);
    const inline = await ort.InferenceSession.create(smallGraph().serialize());
    const a = await external.run({ x });
    const b = await inline.run({ x });
    assert.equal(Array.from(a.y.data as Float32Array), Array.from(b.y.data as Float32Array));
    await external.release();
    await inline.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tensor name used twice is refused', () => {
  const b = new GraphBuilder('dup');
  b.input('x', 'float32', [1]);
  assert.throws(() => b.input('x', 'float32', [1]), /used twice/);
});

test('float16 conversion: exact values, rounding to nearest even, subnormals, overflow', () => {
  assert.is(toFloat16Bits(1), 0x3c00);
  assert.is(toFloat16Bits(-2), 0xc000);
  assert.is(toFloat16Bits(65504), 0x7bff);
  assert.is(toFloat16Bits(1e6), 0x7c00);
  assert.is(toFloat16Bits(2 ** -24), 0x0001);
  assert.is(toFloat16Bits(1 + 2 ** -11), 0x3c00, 'halfway rounds to even (down)');
  assert.is(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02, 'halfway rounds to even (up)');
  assert.is(fromFloat16Bits(0x3555), 0.333251953125);
  const values = Float32Array.of(0, 0.5, -3.25, 1024, 6.103515625e-5);
  assert.equal(Array.from(float16ToFloat32(float32ToFloat16(values))), Array.from(values));
});

test.run();
