/**
 * The prompt graph, run once per prompt: context [textLen, textDim] -> text_embedding (Linear,
 * GELU(tanh), Linear) -> every layer's cross-attention K (with RMSNorm norm_k) and V, [textLen, d].
 */
import type { ModelDims } from '../model/dims.js';
import type { ModelWeights } from '../model/weights.js';
import { GraphBuilder } from './graph-builder.js';
import { Layers, type FloatType } from './layers.js';

export const TEXT_KV_IO = {
  context: 'context',
  crossK: (i: number) => `cross_k.${i}`,
  crossV: (i: number) => `cross_v.${i}`,
} as const;

/** `layers`: a pipeline stage's range [from, to) (default all). */
export function buildTextKvGraph(dims: ModelDims, weights: ModelWeights, dtype: FloatType, layers: readonly [number, number] = [0, dims.layers]): GraphBuilder {
  const b = new GraphBuilder('sinkstream-text-kv');
  const nn = new Layers(b, weights, dtype, dims.eps);
  const context = b.input(TEXT_KV_IO.context, 'float32', [dims.textLen, dims.textDim]);
  const input = dtype === 'float32' ? context : b.op('Cast', [context], { to: 10 });
  const ctx = nn.linear(nn.geluTanh(nn.linear(input, 'text_embedding.0')), 'text_embedding.2'); // [textLen, d]
  for (let i = layers[0]; i < layers[1]; i++) {
    const p = `blocks.${i}.cross_attn`;
    const k = nn.rmsNorm(nn.linear(ctx, `${p}.k`), `${p}.norm_k`);
    const v = nn.linear(ctx, `${p}.v`);
    b.output(k, dtype, [dims.textLen, dims.dim], TEXT_KV_IO.crossK(i));
    b.output(v, dtype, [dims.textLen, dims.dim], TEXT_KV_IO.crossV(i));
  }
  return b;
}
