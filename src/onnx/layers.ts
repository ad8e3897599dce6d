/**
 * The layers the Wan graphs are made of, each a few ONNX nodes: Linear (PyTorch [out, in] weights
 * stored transposed), LayerNorm without affine weights, affine LayerNorm, RMSNorm, SiLU,
 * GELU(tanh) and the adaLN modulation `LN(x) * (1 + scale) + shift`.
 */
import { SinkstreamError } from '../errors.js';
import type { ModelWeights, WeightTensor } from '../model/weights.js';
import { float, MS_DOMAIN, type GraphBuilder } from './graph-builder.js';

export type FloatType = 'float32' | 'float16';

export function weight(weights: ModelWeights, key: string): WeightTensor {
  const w = weights.get(key);
  if (w === undefined) throw new SinkstreamError('ERR_MODEL_SHAPE', `weights: missing tensor '${key}'`);
  return w;
}

/** [out, in] -> [in, out] so that the graph computes x @ W^T as MatMul(x, W_t). */
export function transposed(w: WeightTensor): Float32Array {
  const [out, inp] = w.shape;
  const t = new Float32Array(out * inp);
  for (let o = 0; o < out; o++) {
    const row = o * inp;
    for (let i = 0; i < inp; i++) t[i * out + o] = w.data[row + i];
  }
  return t;
}

export class Layers {
  private ones = new Map<number, string>();
  private one: string | undefined;

  constructor(
    readonly b: GraphBuilder,
    readonly weights: ModelWeights,
    readonly dt: FloatType,
    readonly eps: number,
  ) {}

  /** `key`.weight [out, in] and `key`.bias [out]: x @ W^T + b. */
  linear(x: string, key: string, name?: string): string {
    const w = weight(this.weights, `${key}.weight`);
    const bias = weight(this.weights, `${key}.bias`);
    const [out, inp] = w.shape;
    const wt = this.b.floatInitializer(`${key}.weight_t`, this.dt, [inp, out], transposed(w));
    const bt = this.b.floatInitializer(`${key}.bias`, this.dt, [out], bias.data);
    return this.b.op('Add', [this.b.op('MatMul', [x, wt]), bt], {}, { name });
  }

  private onesOf(size: number): string {
    let name = this.ones.get(size);
    if (name === undefined) {
      name = this.b.floatInitializer(`ones_${size}`, this.dt, [size], new Float32Array(size).fill(1));
      this.ones.set(size, name);
    }
    return name;
  }

  /** LayerNorm over the last axis without affine weights; statistics in float32 (stash_type 1). */
  layerNorm(x: string, size: number): string {
    return this.b.op('LayerNormalization', [x, this.onesOf(size)], { axis: -1, epsilon: float(this.eps), stash_type: 1 });
  }

  /** LayerNorm with `key`.weight and `key`.bias (Wan's norm3). */
  affineLayerNorm(x: string, key: string): string {
    const w = weight(this.weights, `${key}.weight`);
    const bias = weight(this.weights, `${key}.bias`);
    const g = this.b.floatInitializer(`${key}.weight`, this.dt, w.shape, w.data);
    const bb = this.b.floatInitializer(`${key}.bias`, this.dt, bias.shape, bias.data);
    return this.b.op('LayerNormalization', [x, g, bb], { axis: -1, epsilon: float(this.eps), stash_type: 1 });
  }

  /** RMSNorm over the last axis with `key`.weight: x / sqrt(mean(x^2) + eps) * w. */
  rmsNorm(x: string, key: string): string {
    const w = weight(this.weights, `${key}.weight`);
    const g = this.b.floatInitializer(`${key}.weight`, this.dt, w.shape, w.data);
    return this.b.op('SimplifiedLayerNormalization', [x, g], { axis: -1, epsilon: float(this.eps), stash_type: 1 });
  }

  silu(x: string): string {
    return this.b.op('Mul', [x, this.b.op('Sigmoid', [x])]);
  }

  /** GELU with the tanh approximation. */
  geluTanh(x: string): string {
    return this.b.op('FastGelu', [x], {}, { domain: MS_DOMAIN });
  }

  /** x * (1 + scale) + shift. */
  modulate(x: string, shift: string, scale: string): string {
    this.one ??= this.b.floatConst([1], this.dt, [], 'one');
    return this.b.op('Add', [this.b.op('Mul', [x, this.b.op('Add', [scale, this.one])]), shift]);
  }

  /** Multi-head attention, q [1, S, d], k/v [1, S_kv, d], no mask, scale 1/sqrt(headDim). */
  attention(q: string, k: string, v: string, heads: number, withPresent: boolean): string {
    // The present K/V outputs are unused; asking for them lets the WebGPU provider take its
    // flash-attention path (it requires them), and they cost one copy of K/V.
    const outputs = withPresent
      ? [this.b.unusedName('attn'), this.b.unusedName('present_k'), this.b.unusedName('present_v')]
      : [this.b.unusedName('attn')];
    return this.b.node('MultiHeadAttention', [q, k, v], { num_heads: heads }, { domain: MS_DOMAIN, outputs })[0];
  }
}
