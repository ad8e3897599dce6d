import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  bf16ToF32, encodeSafetensors, f16ToF32, f32ToBf16, f32ToF16, readSafetensors, SafetensorsFile, writeSafetensors,
} from '../../src/model/safetensors.js';
import type { WeightTensor } from '../../src/model/weights.js';
import { rejectsWith } from '../helpers/assertions.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-st-'));
const t = (shape: number[], f: (i: number) => number): WeightTensor => ({
  shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
});

test('F32 round trip is exact; header length is little-endian and data 8-byte aligned', async () => {
  const tensors = new Map([
    ['a', t([2, 3], (i) => Math.sin(i) * 1e-3)],
    ['b.c', t([5], (i) => -i * 1.5e10)],
    ['empty', t([0, 4], () => 0)],
  ]);
  const file = path.join(dir, 'f32.safetensors');
  await writeSafetensors(file, tensors, { metadata: { format: 'pt' } });
  const bytes = readFileSync(file);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  assert.is((8 + headerLen) % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString());
  assert.equal(header.a, { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
  assert.equal(header.__metadata__, { format: 'pt' });
  assert.ok(bytes.equals(encodeSafetensors(tensors, { metadata: { format: 'pt' } })));
  const back = await readSafetensors(file);
  for (const [k, v] of tensors) {
    assert.equal(back.get(k)!.shape, v.shape);
    assert.equal([...back.get(k)!.data], [...v.data]);
  }
});

test('reads only selected tensors; F16 and BF16 files convert to float32', async () => {
  const values = t([4], (i) => [1, -2.5, 0.099975586, 65504][i]);
  for (const dtype of ['F16', 'BF16'] as const) {
    const file = path.join(dir, `${dtype}.safetensors`);
    await writeSafetensors(file, new Map([['x', values], ['y', t([2], () => 3)]]), { dtype });
    const st = await SafetensorsFile.open(file);
    assert.is(st.entries.get('x')!.dtype, dtype);
    const x = await st.read('x');
    await st.close();
    const expected = dtype === 'F16' ? [1, -2.5, 0.099975586, 65504] : [1, -2.5, 0.10009765625, 65536];
    assert.equal([...x.data], expected.map(Math.fround));
    assert.equal([...(await readSafetensors(file, (n) => n === 'y')).keys()], ['y']);
  }
});

test('half conversions: known bit patterns, ties to even, subnormals, overflow', () => {
  const h = new Uint16Array(7);
  f32ToF16(Float32Array.from([1, -0, 65520, 2 ** -24, 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11]), h);
  assert.equal([...h], [0x3c00, 0x8000, 0x7c00, 0x0001, 0x0000, 0x3c00, 0x3c02]);
  const f = new Float32Array(3);
  f16ToF32(Uint16Array.from([0x3555, 0x0001, 0xfc00]), f);
  assert.equal([...f], [Math.fround(0.33325195), 2 ** -24, -Infinity]);
  const b = new Uint16Array(3);
  f32ToBf16(Float32Array.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8]), b);
  assert.equal([...b], [0x3f80, 0x3f80, 0x3f82]);
  const back = new Float32Array(1);
  bf16ToF32(Uint16Array.from([0xc040]), back);
  assert.is(back[0], -3);
});

test('malformed files are ERR_MODEL_FILE naming the file and the problem', async () => {
  const good = encodeSafetensors(new Map([['w', t([4], (i) => i)]]));
  const truncated = path.join(dir, 'truncated.safetensors');
  writeFileSync(truncated, good.subarray(0, good.length - 4));
  await rejectsWith(SafetensorsFile.open(truncated), 'ERR_MODEL_FILE', 'truncated');

  const short = path.join(dir, 'short.safetensors');
  writeFileSync(short, Buffer.from([1, 2, 3]));
  await rejectsWith(SafetensorsFile.open(short), 'ERR_MODEL_FILE', short);

  const mk = (header: unknown, dataBytes: number): Buffer => {
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json, Buffer.alloc(dataBytes)]);
  };
  const wrongSize = path.join(dir, 'wrong-size.safetensors');
  writeFileSync(wrongSize, mk({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } }, 16));
  await rejectsWith(SafetensorsFile.open(wrongSize), 'ERR_MODEL_FILE', "tensor 'w'");

  const badJson = path.join(dir, 'bad-json.safetensors');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(5n);
  writeFileSync(badJson, Buffer.concat([len, Buffer.from('{nope')]));
  await rejectsWith(SafetensorsFile.open(badJson), 'ERR_MODEL_FILE', 'JSON');

  const hugeHeader = path.join(dir, 'huge-header.safetensors');
  const big = Buffer.alloc(16);
  big.writeBigUInt64LE(1n << 40n);
  writeFileSync(hugeHeader, big);
  await rejectsWith(SafetensorsFile.open(hugeHeader), 'ERR_MODEL_FILE', 'header length');

  const int = path.join(dir, 'int.safetensors');
  writeFileSync(int, mk({ i: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8));
  const st = await SafetensorsFile.open(int);
  await rejectsWith(st.read('i'), 'ERR_MODEL_FILE', 'I64');
  await st.close();
});

test.run();
