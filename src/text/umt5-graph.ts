/**
 * The umT5 encoder (src/text/umt5-weights.ts) as an ONNX graph, run once per prompt on the prompt's
 * real tokens only (rows of real tokens never attend to padding in Wan's masked run, so they are
 * the same; tools/reference/umt5.py checks it).
 *
 * Inputs:  embeddings [L, dim] f32    the tokens' rows of token_embedding (looked up by the caller)
 *          buckets [L, L] int64       relative-position bucket of key j for query i (umt5Buckets)
 * Output:  context [L, dim] f32
 * Per layer: x += o(softmax(q k^T + bias) v) on RMS(x) * norm1 (no 1/sqrt(headDim) scaling, bias
 * = the layer's own table gathered by bucket); x += fc2(fc1(h) * gelu_tanh(gate(h))) on
 * RMS(x) * norm2; then RMS(x) * norm. Linears are Gemm with transB on the checkpoint's [out, in]
 * tensors (no transposed copies); softmax and norms in float32.
 */
import type { ModelWeights } from '../model/weights.js';
import type { Umt5Arch } from './umt5-weights.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { Layers, weight } from '../onnx/layers.js';

export const UMT5_IO = { embeddings: 'embeddings', buckets: 'buckets', context: 'context' } as const;

/**
 * Bucket of relative offset j - i (bidirectional T5 buckets), computed in float32 as PyTorch does:
 * offsets below buckets/4 are exact, larger ones share logarithmic buckets up to maxDistance.
 */
export function umt5Bucket(offset: number, buckets: number, maxDistance: number): number {
  const half = buckets >> 1;
  const base = offset > 0 ? half : 0;
  const rel = Math.abs(offset);
  const exact = half >> 1;
  if (rel < exact) return base + rel;
  const f = Math.fround;
  const scaled = f(f(f(Math.log(f(rel / exact))) / f(Math.log(maxDistance / exact))) * (half - exact));
  return base + Math.min(exact + Math.trunc(scaled), half - 1);
}

/** [L, L] buckets (row = query i, column = key j). */
export function umt5Buckets(length: number, buckets: number, maxDistance: number): BigInt64Array {
  const byOffset = new Map<number, bigint>();
  const out = new BigInt64Array(length * length);
  for (let i = 0; i < length; i++) {
    for (let j = 0; j < length; j++) {
      const d = j - i;
      let b = byOffset.get(d);
      if (b === undefined) byOffset.set(d, (b = BigInt(umt5Bucket(d, buckets, maxDistance))));
      out[i * length + j] = b;
    }
  }
  return out;
}

export function buildUmt5Graph(a: Umt5Arch, weights: ModelWeights): GraphBuilder {
  const b = new GraphBuilder('sinkstream-umt5-encoder');
  const nn = new Layers(b, weights, 'float32', a.eps);
  const hd = a.dim / a.heads;
  const linear = (x: string, key: string): string => {
    const w = weight(weights, key);
    return b.op('Gemm', [x, b.initializer(key, 'float32', w.shape, w.data)], { transB: 1 });
  };
  const headsShape = b.int64s([-1, a.heads, hd], 'heads_shape');
  const rowsShape = b.int64s([-1, a.dim], 'rows_shape');
  let x = b.input(UMT5_IO.embeddings, 'float32', ['tokens', a.dim]);
  const buckets = b.input(UMT5_IO.buckets, 'int64', ['tokens', 'tokens']);
  for (let i = 0; i < a.layers; i++) {
    const p = `blocks.${i}`;
    const h = nn.rmsNorm(x, `${p}.norm1`);
    const split = (t: string, perm: number[]): string => b.op('Transpose', [b.op('Reshape', [t, headsShape])], { perm });
    const q = split(linear(h, `${p}.attn.q.weight`), [1, 0, 2]); // [H, L, hd]
    const kT = split(linear(h, `${p}.attn.k.weight`), [1, 2, 0]); // [H, hd, L]
    const v = split(linear(h, `${p}.attn.v.weight`), [1, 0, 2]); // [H, L, hd]
    const table = weight(weights, `${p}.pos_embedding.embedding.weight`);
    const bias = b.op('Transpose', [b.op('Gather', [b.initializer(`${p}.pos_embedding.embedding.weight`, 'float32', table.shape, table.data), buckets])], {
      perm: [2, 0, 1],
    }); // [H, L, L]
    const probs = b.op('Softmax', [b.op('Add', [b.op('MatMul', [q, kT]), bias])], { axis: -1 });
    const heads = b.op('Transpose', [b.op('MatMul', [probs, v])], { perm: [1, 0, 2] }); // [L, H, hd]
    x = b.op('Add', [x, linear(b.op('Reshape', [heads, rowsShape]), `${p}.attn.o.weight`)]);
    const g = nn.rmsNorm(x, `${p}.norm2`);
    const gated = b.op('Mul', [linear(g, `${p}.ffn.fc1.weight`), nn.geluTanh(linear(g, `${p}.ffn.gate.0.weight`))]);
    x = b.op('Add', [x, linear(gated, `${p}.ffn.fc2.weight`)]);
  }
  b.output(nn.rmsNorm(x, 'norm'), 'float32', ['tokens', a.dim], UMT5_IO.context);
  return b;
}
