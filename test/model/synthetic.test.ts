import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { modelDims } from '../../src/model/dims.js';
import { expectedShapes } from '../../src/model/expected-shapes.js';
import { syntheticTextTable, syntheticWeights } from '../../src/model/synthetic.js';

const dims = modelDims(configSchema.parse({ model: { arch: { dim: 64, layers: 3, heads: 2, ffnDim: 256, latentChannels: 12, textDim: 32 } } }));

function stats(data: Float32Array): { mean: number; std: number; maxAbs: number } {
  let s = 0, s2 = 0, m = 0;
  for (const v of data) { s += v; s2 += v * v; m = Math.max(m, Math.abs(v)); }
  const mean = s / data.length;
  return { mean, std: Math.sqrt(s2 / data.length - mean * mean), maxAbs: m };
}

test('every expected key with its shape; deterministic per seed; seeds differ', () => {
  const a = syntheticWeights(dims, 5);
  const b = syntheticWeights(dims, 5);
  const c = syntheticWeights(dims, 6);
  const shapes = expectedShapes(dims);
  assert.equal([...a.keys()], [...shapes.keys()]);
  for (const [k, shape] of shapes) {
    assert.equal(a.get(k)!.shape, shape, k);
    assert.is(a.get(k)!.data.length, shape.reduce((x, y) => x * y, 1), k);
    assert.ok(Buffer.from(a.get(k)!.data.buffer).equals(Buffer.from(b.get(k)!.data.buffer)), `deterministic ${k}`);
  }
  assert.not.ok(Buffer.from(a.get('blocks.0.ffn.0.weight')!.data.buffer).equals(Buffer.from(c.get('blocks.0.ffn.0.weight')!.data.buffer)));
  // tensors are independent streams: the same key in two layers differs
  assert.not.equal([...a.get('blocks.0.self_attn.q.weight')!.data.slice(0, 8)], [...a.get('blocks.1.self_attn.q.weight')!.data.slice(0, 8)]);
});

test('tame statistics: linear std = scale/sqrt(fan_in), norms around 1, small modulation', () => {
  const w = syntheticWeights(dims, 1, 0.5);
  const ffn2 = stats(w.get('blocks.0.ffn.2.weight')!.data);
  assert.ok(Math.abs(ffn2.std - 0.5 / Math.sqrt(256)) < 0.002, `ffn.2 std ${ffn2.std}`);
  assert.ok(Math.abs(ffn2.mean) < 0.002);
  assert.ok(ffn2.maxAbs < 3.5 * 0.5 / Math.sqrt(256), 'bounded tails');
  const patch = stats(w.get('patch_embedding.weight')!.data);
  assert.ok(Math.abs(patch.std - 0.5 / Math.sqrt(12 * 4)) < 0.01, `patch std ${patch.std}`);
  const norm = stats(w.get('blocks.2.cross_attn.norm_q.weight')!.data);
  assert.ok(Math.abs(norm.mean - 1) < 0.03 && norm.std < 0.1, `norm ${norm.mean} ${norm.std}`);
  const mod = stats(w.get('blocks.1.modulation')!.data);
  assert.ok(mod.maxAbs < 0.1, `modulation max ${mod.maxAbs}`);
  for (const t of w.values()) for (const v of t.data) if (!Number.isFinite(v)) assert.unreachable('non-finite weight');
});

test('syntheticTextTable: [vocab, textDim], unit std, deterministic', () => {
  const t = syntheticTextTable(50, 32, 3);
  assert.equal(t.shape, [50, 32]);
  const s = stats(t.data);
  assert.ok(Math.abs(s.std - 1) < 0.06 && Math.abs(s.mean) < 0.1, `${s.mean} ${s.std}`);
  assert.equal([...syntheticTextTable(50, 32, 3).data], [...t.data]);
});

test.run();
