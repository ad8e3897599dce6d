/**
 * The Wan2.1 VAE decoder (src/decode/wan-vae/arch.ts) as two ONNX graphs that decode a stream
 * block by block, the causal convolutions' memory passed in and out as graph IO:
 *
 *   first  a stream's first latent frame: latent [1, z, 1, h, w] -> frames [1, 3, H, W] and every
 *          `new_cache.<key>`. No time doubling here (vae.py's first chunk: the Resample's time_conv
 *          is skipped and its cache starts as zeros, the 'Rep' case).
 *   block  any later latent frames: latent [1, z, F, h, w] and every `cache.<key>` -> frames
 *          [4F, 3, H, W] and every `new_cache.<key>`.
 *
 * A cache is [2, C, h_l, w_l]: the last two frames of that causal conv's input (vae.py's CACHE_T).
 * A causal 3x3x3 conv over [cache ‖ x] is one 2D conv whose input stacks three consecutive frames
 * along the channels (weights [out, 3 * in, 3, 3], kernel slice k at channels k*in..), so the
 * graph needs only 2D Conv (which both the CPU and the WebGPU providers run well). In `first` the
 * cache is zeros and only the kernel's last slice meets a nonzero frame.
 *
 * Layout inside the graph: frames are the batch axis, [F, C, H, W]. The latent un-normalisation
 * (z * std + mean, the published per-channel statistics) is folded into conv2 (a 1x1x1 conv), which
 * is exact up to float rounding. RMS_norm statistics run in float32 also when the graph computes in
 * float16. Outputs are float32, RGB in about [-1, 1] (not clamped).
 */
import { SinkstreamError } from '../../errors.js';
import type { ModelWeights } from '../../model/weights.js';
import { CACHE_FRAMES, causalCaches, decoderStages, type WanVaeArch } from './arch.js';
import { GraphBuilder } from '../../onnx/graph-builder.js';
import { weight, type FloatType } from '../../onnx/layers.js';

export const WAN_VAE_IO = {
  latent: 'latent',
  frames: 'frames',
  cache: (key: string) => `cache.${key}`,
  newCache: (key: string) => `new_cache.${key}`,
} as const;

export interface WanVaeGraphOptions {
  arch: WanVaeArch;
  latentHeight: number;
  latentWidth: number;
  dtype: FloatType;
  /** `first`: a stream's first latent frame; `block`: every later one. */
  part: 'first' | 'block';
  /** Latent statistics to undo before conv2 (z * std + mean); null: the latent is used as is. */
  latentStats: { mean: readonly number[]; std: readonly number[] } | null;
}

const FLOAT32 = 1;
const FLOAT16 = 10;
const INT64_MAX = Number.MAX_SAFE_INTEGER;

/** The cache tensors' dims, in graph order. */
export function wanVaeCacheDims(arch: WanVaeArch, latentHeight: number, latentWidth: number): { key: string; dims: number[] }[] {
  return causalCaches(arch).map((c) => ({ key: c.key, dims: [CACHE_FRAMES, c.channels, latentHeight * c.scale, latentWidth * c.scale] }));
}

export function buildWanVaeGraph(weights: ModelWeights, options: WanVaeGraphOptions): GraphBuilder {
  const { arch, latentHeight: h, latentWidth: w, dtype: dt, part } = options;
  const first = part === 'first';
  const io = WAN_VAE_IO;
  const b = new GraphBuilder(`sinkstream-wan-vae-${part}`);
  const shape = (...s: number[]): string => b.int64s(s);
  const toDt = (x: string): string => (dt === 'float32' ? x : b.op('Cast', [x], { to: FLOAT16 }));
  const toF32 = (x: string): string => (dt === 'float32' ? x : b.op('Cast', [x], { to: FLOAT32 }));
  const cacheDims = new Map(wanVaeCacheDims(arch, h, w).map((c) => [c.key, c.dims]));

  const latent = b.input(io.latent, 'float32', [1, arch.zDim, first ? 1 : 'frames', h, w]);
  const cacheIn = new Map<string, string>();
  if (!first) for (const [key, dims] of cacheDims) cacheIn.set(key, b.input(io.cache(key), dt, dims));
  const emitCache = (key: string, tensor: string): void => {
    b.output(tensor, dt, cacheDims.get(key)!, io.newCache(key));
  };

  const tensor = (key: string, dims: number[], data: Float32Array): string => b.floatInitializer(key, dt, dims, data);
  const bias = (key: string): string => tensor(`${key}.bias`, [weight(weights, `${key}.bias`).shape[0]], weight(weights, `${key}.bias`).data);

  /** RMS_norm over the channels: x / max(||x||, 1e-12) * sqrt(C) * gamma, in float32. */
  function rmsNorm(x: string, gammaKey: string, channels: number): string {
    const g = weight(weights, gammaKey);
    const scaled = Float32Array.from(g.data, (v) => v * Math.sqrt(channels));
    const gamma = b.floatInitializer(gammaKey, 'float32', [channels, 1, 1], scaled);
    const xf = toF32(x);
    const norm = b.op('Max', [b.op('ReduceL2', [xf], { axes: [1], keepdims: 1 }), b.floatConst([1e-12], 'float32', [])]);
    return toDt(b.op('Mul', [b.op('Div', [xf, norm]), gamma]));
  }

  const silu = (x: string): string => b.op('Mul', [x, b.op('Sigmoid', [x])]);

  /**
   * Causal conv with temporal kernel 3 over frames [F, C, H, W] (`cache.<key>` holds the two frames
   * before them); spatial kernel k with zero padding k / 2.
   */
  function causalConv(x: string, key: string): string {
    const wt = weight(weights, `${key}.weight`);
    const [out, inp, kt, kh, kw] = wt.shape;
    if (kt !== 3) throw new Error(`internal: ${key} is not a temporal-3 causal conv`);
    const pads = [kh >> 1, kw >> 1, kh >> 1, kw >> 1];
    const plane = kh * kw;
    if (first) {
      // zeros before the first frame: only the kernel's last temporal slice sees data
      const last = new Float32Array(out * inp * plane);
      for (let oc = 0; oc < out * inp; oc++) {
        const from = (oc * kt + 2) * plane;
        for (let p = 0; p < plane; p++) last[oc * plane + p] = wt.data[from + p];
      }
      emitCache(key, b.op('Pad', [x, shape(CACHE_FRAMES - 1, 0, 0, 0, 0, 0, 0, 0)]));
      return b.op('Conv', [x, tensor(`${key}.weight_last`, [out, inp, kh, kw], last), bias(key)], { kernel_shape: [kh, kw], pads });
    }
    // stacked[o, k*inp + c] = W[o, c, k]
    const stacked = new Float32Array(out * 3 * inp * plane);
    for (let o = 0; o < out; o++) {
      for (let c = 0; c < inp; c++) {
        for (let k = 0; k < 3; k++) {
          const from = ((o * inp + c) * kt + k) * plane;
          const to = (o * 3 * inp + k * inp + c) * plane;
          for (let p = 0; p < plane; p++) stacked[to + p] = wt.data[from + p];
        }
      }
    }
    const all = b.op('Concat', [cacheIn.get(key)!, x], { axis: 0 }); // [F + 2, C, H, W]
    const slice = (start: number, end: number): string => b.op('Slice', [all, shape(start), shape(end), shape(0)]);
    emitCache(key, slice(-CACHE_FRAMES, INT64_MAX));
    const input = b.op('Concat', [slice(0, -2), slice(1, -1), slice(2, INT64_MAX)], { axis: 1 }); // [F, 3C, H, W]
    return b.op('Conv', [input, tensor(`${key}.weight_stacked`, [out, 3 * inp, kh, kw], stacked), bias(key)], { kernel_shape: [kh, kw], pads });
  }

  /** A 1x1x1 conv (no time extent) or a 2D conv, per frame. */
  function frameConv(x: string, key: string): string {
    const wt = weight(weights, `${key}.weight`);
    const [out, inp] = wt.shape;
    const kh = wt.shape.length === 5 ? wt.shape[3] : wt.shape[2];
    const kw = wt.shape.length === 5 ? wt.shape[4] : wt.shape[3];
    const pads = [kh >> 1, kw >> 1, kh >> 1, kw >> 1];
    return b.op('Conv', [x, tensor(`${key}.weight`, [out, inp, kh, kw], wt.data), bias(key)], { kernel_shape: [kh, kw], pads });
  }

  function residual(x: string, key: string, inDim: number, outDim: number): string {
    const shortcut = inDim === outDim ? x : frameConv(x, `${key}.shortcut`);
    let y = causalConv(silu(rmsNorm(x, `${key}.residual.0.gamma`, inDim)), `${key}.residual.2`);
    y = causalConv(silu(rmsNorm(y, `${key}.residual.3.gamma`, outDim)), `${key}.residual.6`);
    return b.op('Add', [y, shortcut]);
  }

  /** One-head self-attention among the pixels of each frame. */
  function attention(x: string, key: string, c: number, scale: number): string {
    const hw = h * scale * w * scale;
    const qkvW = weight(weights, `${key}.to_qkv.weight`);
    const qkvB = weight(weights, `${key}.to_qkv.bias`);
    // q, k, v are the to_qkv output's channel thirds; q pre-scaled by 1/sqrt(c)
    const s = 1 / Math.sqrt(c);
    const wT = new Float32Array(c * 3 * c);
    for (let o = 0; o < 3 * c; o++) for (let i = 0; i < c; i++) wT[i * 3 * c + o] = qkvW.data[o * c + i] * (o < c ? s : 1);
    const bq = Float32Array.from(qkvB.data, (v, o) => v * (o < c ? s : 1));
    const pW = weight(weights, `${key}.proj.weight`);
    const pT = new Float32Array(c * c);
    for (let o = 0; o < c; o++) for (let i = 0; i < c; i++) pT[i * c + o] = pW.data[o * c + i];

    const tokens = b.op('Transpose', [b.op('Reshape', [rmsNorm(x, `${key}.norm.gamma`, c), shape(0, c, hw)])], { perm: [0, 2, 1] }); // [F, HW, C]
    const qkv = b.op('Add', [b.op('MatMul', [tokens, tensor(`${key}.to_qkv.weight_t`, [c, 3 * c], wT)]), tensor(`${key}.to_qkv.bias_scaled`, [3 * c], bq)]);
    const [q, k, v] = b.node('Split', [qkv, shape(c, c, c)], { axis: 2 }, { outputs: 3 });
    const scores = b.op('MatMul', [q, b.op('Transpose', [k], { perm: [0, 2, 1] })]); // [F, HW, HW]
    const attn = b.op('MatMul', [b.op('Softmax', [scores], { axis: -1 }), v]);
    const out = b.op('Add', [b.op('MatMul', [attn, tensor(`${key}.proj.weight_t`, [c, c], pT)]), bias(`${key}.proj`)]);
    const back = b.op('Reshape', [b.op('Transpose', [out], { perm: [0, 2, 1] }), shape(0, c, h * scale, w * scale)]);
    return b.op('Add', [back, x]);
  }

  function resample(x: string, key: string, c: number, temporal: boolean, scale: number): string {
    if (temporal) {
      const timeKey = `${key}.time_conv`;
      if (first) {
        // vae.py's 'Rep': the first chunk skips time_conv; it starts on zeros at the next chunk
        const dims = cacheDims.get(timeKey)!;
        emitCache(timeKey, b.op('Expand', [b.floatConst([0], dt, []), shape(...dims)]));
      } else {
        const doubled = causalConv(x, timeKey); // [F, 2C, H, W]: the halves are frames 2f and 2f + 1
        x = b.op('Reshape', [doubled, shape(-1, c, h * scale, w * scale)]);
      }
    }
    const up = b.op('Resize', [x, '', b.floatConst([1, 1, 2, 2], 'float32')], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
    return frameConv(up, `${key}.resample.1`);
  }

  // ---- conv2 with the un-normalisation folded in: W (z * std + mean) + b = (W diag(std)) z + (W mean + b)
  const z = arch.zDim;
  const c2w = weight(weights, 'conv2.weight');
  const c2b = weight(weights, 'conv2.bias');
  const stats = options.latentStats;
  if (stats && (stats.mean.length !== z || stats.std.length !== z)) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `latent statistics for ${stats.mean.length} channels, the decoder has ${z}`);
  }
  const foldedW = new Float32Array(z * z);
  const foldedB = Float32Array.from(c2b.data);
  for (let o = 0; o < z; o++) {
    for (let i = 0; i < z; i++) {
      const wv = c2w.data[o * z + i];
      foldedW[o * z + i] = wv * (stats ? stats.std[i] : 1);
      if (stats) foldedB[o] += wv * stats.mean[i];
    }
  }
  const frames = b.op('Reshape', [b.op('Transpose', [latent], { perm: [0, 2, 1, 3, 4] }), shape(-1, z, h, w)]); // [F, z, h, w]
  let x = b.op('Conv', [toDt(frames), tensor('conv2.weight_unnormalised', [z, z, 1, 1], foldedW), tensor('conv2.bias_unnormalised', [z], foldedB)], {
    kernel_shape: [1, 1],
  });

  for (const s of decoderStages(arch)) {
    switch (s.kind) {
      case 'conv':
        x = causalConv(x, s.key);
        break;
      case 'residual':
        x = residual(x, s.key, s.inDim, s.outDim);
        break;
      case 'attention':
        x = attention(x, s.key, s.dim, s.scale);
        break;
      case 'resample':
        x = resample(x, s.key, s.dim, s.temporal, s.scale);
        break;
      case 'head':
        x = causalConv(silu(rmsNorm(x, `${s.key}.0.gamma`, s.dim)), `${s.key}.2`);
        break;
    }
  }
  const scale = decoderStages(arch).reduce((n, st) => (st.kind === 'resample' ? n * 2 : n), 1);
  b.output(toF32(x), 'float32', [first ? 1 : 'video_frames', 3, h * scale, w * scale], io.frames);
  return b;
}
