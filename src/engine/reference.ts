/**
 * The model's math (docs/model.md) in plain TypeScript, float64 throughout: the truth that tests hold
 * every engine to. Written for obviousness, not speed; use it at tiny sizes only.
 *
 * Same cache contract as the engines (src/engine/types.ts): cached keys are stored after RMSNorm
 * and BEFORE RoPE, with their (frame, row, column) positions; they are rotated when attended.
 */
import type { CacheUpdate } from './types.js';
import { ropeFrequencies, type ModelDims } from '../model/dims.js';
import type { ModelWeights, WeightTensor } from '../model/weights.js';

type Vec = Float64Array;

/** One layer's cache rows: keys/values [rows, d] (keys not rotated), positions [rows, 3]. */
export interface ReferenceCacheLayer {
  rows: number;
  keys: Float32Array;
  values: Float32Array;
  positions: Float32Array;
}

/** One layer's cross-attention K (after norm_k) and V, [textLen, d]. */
export interface ReferenceCrossKv {
  k: Float32Array;
  v: Float32Array;
}

export interface ReferenceForwardInput {
  /** [C, F, H, W] */
  latent: Float32Array;
  /** [F] */
  timesteps: ArrayLike<number>;
  /** [F] */
  framePositions: ArrayLike<number>;
  crossKv: ReferenceCrossKv[];
  /** Per layer; rows may be 0. */
  cache: ReferenceCacheLayer[];
}

export interface ReferenceForwardOutput {
  /** [C, F, H, W] */
  flow: Float32Array;
  /** Per layer: this block's keys (after RMSNorm, not rotated) and values, [F*T, d]. */
  keys: Float32Array[];
  values: Float32Array[];
  /** Per layer: RoPE'd queries [F*T, d]. */
  queries: Float32Array[];
  /** Per layer: per-frame sums of the RoPE'd queries [F, d]. */
  querySums: Float32Array[];
}

function get(weights: ModelWeights, key: string): WeightTensor {
  const w = weights.get(key);
  if (w === undefined) throw new Error(`reference: missing weight ${key}`);
  return w;
}

/** y[n, out] = x[n, in] @ W^T + b with W [out, in]. */
function linear(x: Vec, n: number, weights: ModelWeights, key: string): Vec {
  const w = get(weights, `${key}.weight`);
  const bias = get(weights, `${key}.bias`).data;
  const [out, inp] = w.shape;
  const y = new Float64Array(n * out);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < out; o++) {
      let s = bias[o];
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[o * inp + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Vec, n: number, d: number, eps: number, gamma?: Float32Array, beta?: Float32Array): Vec {
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i];
    mean /= d;
    let variance = 0;
    for (let i = 0; i < d; i++) variance += (x[r * d + i] - mean) ** 2;
    variance /= d;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < d; i++) {
      let v = (x[r * d + i] - mean) * inv;
      if (gamma) v *= gamma[i];
      if (beta) v += beta[i];
      y[r * d + i] = v;
    }
  }
  return y;
}

function rmsNorm(x: Vec, n: number, d: number, eps: number, gamma: Float32Array): Vec {
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let ms = 0;
    for (let i = 0; i < d; i++) ms += x[r * d + i] ** 2;
    const inv = 1 / Math.sqrt(ms / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * inv * gamma[i];
  }
  return y;
}

const silu = (v: number): number => v / (1 + Math.exp(-v));
const geluTanh = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const map = (x: Vec, f: (v: number) => number): Vec => x.map(f);

/** Timestep sinusoid: [cos(t w_i) ..., sin(t w_i) ...], w_i = 10000^(-i/half), half = freqDim/2 (cos first). */
export function timestepSinusoid(t: number, freqDim: number): Vec {
  const half = freqDim / 2;
  const out = new Float64Array(freqDim);
  for (let i = 0; i < half; i++) {
    const a = t * Math.pow(10000, -i / half);
    out[i] = Math.cos(a);
    out[half + i] = Math.sin(a);
  }
  return out;
}

/** Angle of every pair of a head for a token at (frame, row, column): pos(part) * w_j. */
export function ropeAngles(dims: Pick<ModelDims, 'ropeSplit' | 'ropeTheta'>, position: ArrayLike<number>): Vec {
  const freqs = ropeFrequencies(dims);
  const angles = new Float64Array(dims.ropeSplit[0] + dims.ropeSplit[1] + dims.ropeSplit[2]);
  let j = 0;
  for (let part = 0; part < 3; part++) {
    for (let k = 0; k < dims.ropeSplit[part]; k++) angles[j++] = position[part] * freqs[part][k];
  }
  return angles;
}

/**
 * RoPE of one token's [d] vector (all heads), ADJACENT pairs (2j, 2j+1) rotated by angle_j:
 * (a, b) -> (a cos - b sin, a sin + b cos).
 */
export function ropeRotate(
  dims: Pick<ModelDims, 'ropeSplit' | 'ropeTheta' | 'heads' | 'headDim'>,
  vec: ArrayLike<number>,
  position: ArrayLike<number>,
): Vec {
  const angles = ropeAngles(dims, position);
  const out = new Float64Array(dims.heads * dims.headDim);
  for (let h = 0; h < dims.heads; h++) {
    for (let j = 0; j < angles.length; j++) {
      const i = h * dims.headDim + 2 * j;
      const a = vec[i];
      const b = vec[i + 1];
      const c = Math.cos(angles[j]);
      const s = Math.sin(angles[j]);
      out[i] = a * c - b * s;
      out[i + 1] = a * s + b * c;
    }
  }
  return out;
}

/** Softmax attention per head, q [S, d] over k/v [M, d], scale 1/sqrt(headDim), no mask. */
function attention(q: Vec, S: number, k: Vec, v: Vec, M: number, heads: number, headDim: number): Vec {
  const d = heads * headDim;
  const out = new Float64Array(S * d);
  const scores = new Float64Array(M);
  const scale = 1 / Math.sqrt(headDim);
  for (let h = 0; h < heads; h++) {
    const o = h * headDim;
    for (let s = 0; s < S; s++) {
      let max = -Infinity;
      for (let m = 0; m < M; m++) {
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[s * d + o + i] * k[m * d + o + i];
        scores[m] = dot * scale;
        if (scores[m] > max) max = scores[m];
      }
      let sum = 0;
      for (let m = 0; m < M; m++) {
        scores[m] = Math.exp(scores[m] - max);
        sum += scores[m];
      }
      for (let m = 0; m < M; m++) {
        const p = scores[m] / sum;
        for (let i = 0; i < headDim; i++) out[s * d + o + i] += p * v[m * d + o + i];
      }
    }
  }
  return out;
}

/** The prompt's per-layer cross-attention K (after norm_k) and V. context: [textLen, textDim]. */
export function referenceTextKv(dims: ModelDims, weights: ModelWeights, context: Float32Array): ReferenceCrossKv[] {
  const n = dims.textLen;
  const ctx = linear(map(linear(Float64Array.from(context), n, weights, 'text_embedding.0'), geluTanh), n, weights, 'text_embedding.2');
  const out: ReferenceCrossKv[] = [];
  for (let i = 0; i < dims.layers; i++) {
    const p = `blocks.${i}.cross_attn`;
    const k = rmsNorm(linear(ctx, n, weights, `${p}.k`), n, dims.dim, dims.eps, get(weights, `${p}.norm_k.weight`).data);
    out.push({ k: Float32Array.from(k), v: Float32Array.from(linear(ctx, n, weights, `${p}.v`)) });
  }
  return out;
}

/** One forward pass of one block, attending to [cache ‖ block]. */
export function referenceForward(dims: ModelDims, weights: ModelWeights, input: ReferenceForwardInput): ReferenceForwardOutput {
  const { dim: d, heads, headDim, latentChannels: C, tokensPerFrame: T, gridWidth: gw, eps } = dims;
  const [, ph, pw] = dims.patch;
  const H = dims.latentHeight;
  const W = dims.latentWidth;
  const F = input.timesteps.length;
  const L = F * T;
  const frameOf = (token: number): number => Math.floor(token / T);

  // 1. patchify: Conv3d(C -> d, kernel = stride = (1, ph, pw)); tokens ordered (frame, row, column)
  const pw8 = get(weights, 'patch_embedding.weight').data; // [d, C, 1, ph, pw]
  const pb = get(weights, 'patch_embedding.bias').data;
  const x = new Float64Array(L * d);
  for (let f = 0; f < F; f++) {
    for (let t = 0; t < T; t++) {
      const r = Math.floor(t / gw);
      const c = t % gw;
      for (let o = 0; o < d; o++) {
        let s = pb[o];
        for (let ch = 0; ch < C; ch++) {
          for (let i = 0; i < ph; i++) {
            for (let j = 0; j < pw; j++) {
              s += pw8[((o * C + ch) * ph + i) * pw + j] * input.latent[((ch * F + f) * H + r * ph + i) * W + c * pw + j];
            }
          }
        }
        x[(f * T + t) * d + o] = s;
      }
    }
  }

  // 2. time embedding per frame: e [F, d], e0 [F, 6d]
  const sin = new Float64Array(F * dims.freqDim);
  for (let f = 0; f < F; f++) sin.set(timestepSinusoid(input.timesteps[f], dims.freqDim), f * dims.freqDim);
  const e = linear(map(linear(sin, F, weights, 'time_embedding.0'), silu), F, weights, 'time_embedding.2');
  const e0 = linear(map(e, silu), F, weights, 'time_projection.1');

  // positions of the block's tokens
  const tokenPos = (token: number): number[] => {
    const t = token % T;
    return [input.framePositions[frameOf(token)], Math.floor(t / gw), t % gw];
  };

  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  const queries: Float32Array[] = [];
  const querySums: Float32Array[] = [];

  for (let li = 0; li < dims.layers; li++) {
    const p = `blocks.${li}`;
    const table = get(weights, `${p}.modulation`).data; // [1, 6, d]
    // m[k] of token n, dim i = table[k, i] + e0[frame(n), k, i]
    const mod = (k: number, n: number, i: number): number => table[k * d + i] + e0[frameOf(n) * 6 * d + k * d + i];
    const modulate = (z: Vec, shiftK: number, scaleK: number): Vec => {
      const out = new Float64Array(L * d);
      for (let n = 0; n < L; n++) for (let i = 0; i < d; i++) out[n * d + i] = z[n * d + i] * (1 + mod(scaleK, n, i)) + mod(shiftK, n, i);
      return out;
    };

    // self-attention
    const y = modulate(layerNorm(x, L, d, eps), 0, 1);
    const q = rmsNorm(linear(y, L, weights, `${p}.self_attn.q`), L, d, eps, get(weights, `${p}.self_attn.norm_q.weight`).data);
    const k = rmsNorm(linear(y, L, weights, `${p}.self_attn.k`), L, d, eps, get(weights, `${p}.self_attn.norm_k.weight`).data);
    const v = linear(y, L, weights, `${p}.self_attn.v`);
    keys.push(Float32Array.from(k));
    values.push(Float32Array.from(v));

    const cache = input.cache[li];
    const N = cache.rows;
    const M = N + L;
    const allK = new Float64Array(M * d);
    const allV = new Float64Array(M * d);
    for (let n = 0; n < N; n++) {
      allK.set(ropeRotate(dims, cache.keys.subarray(n * d, (n + 1) * d), cache.positions.subarray(n * 3, n * 3 + 3)), n * d);
      allV.set(cache.values.subarray(n * d, (n + 1) * d), n * d);
    }
    const qRot = new Float64Array(L * d);
    for (let n = 0; n < L; n++) {
      const pos = tokenPos(n);
      qRot.set(ropeRotate(dims, q.subarray(n * d, (n + 1) * d), pos), n * d);
      allK.set(ropeRotate(dims, k.subarray(n * d, (n + 1) * d), pos), (N + n) * d);
      allV.set(v.subarray(n * d, (n + 1) * d), (N + n) * d);
    }
    queries.push(Float32Array.from(qRot));
    const sums = new Float64Array(F * d);
    for (let n = 0; n < L; n++) for (let i = 0; i < d; i++) sums[frameOf(n) * d + i] += qRot[n * d + i];
    querySums.push(Float32Array.from(sums));

    const selfOut = linear(attention(qRot, L, allK, allV, M, heads, headDim), L, weights, `${p}.self_attn.o`);
    for (let n = 0; n < L; n++) for (let i = 0; i < d; i++) x[n * d + i] += selfOut[n * d + i] * mod(2, n, i);

    // cross-attention (norm3 affine, RMSNorm q; K/V from the prompt)
    const n3 = layerNorm(x, L, d, eps, get(weights, `${p}.norm3.weight`).data, get(weights, `${p}.norm3.bias`).data);
    const cq = rmsNorm(linear(n3, L, weights, `${p}.cross_attn.q`), L, d, eps, get(weights, `${p}.cross_attn.norm_q.weight`).data);
    const ckv = input.crossKv[li];
    const crossOut = linear(
      attention(cq, L, Float64Array.from(ckv.k), Float64Array.from(ckv.v), dims.textLen, heads, headDim),
      L,
      weights,
      `${p}.cross_attn.o`,
    );
    for (let n = 0; n < L * d; n++) x[n] += crossOut[n];

    // feed-forward
    const y2 = modulate(layerNorm(x, L, d, eps), 3, 4);
    const ffn = linear(map(linear(y2, L, weights, `${p}.ffn.0`), geluTanh), L, weights, `${p}.ffn.2`);
    for (let n = 0; n < L; n++) for (let i = 0; i < d; i++) x[n * d + i] += ffn[n * d + i] * mod(5, n, i);
  }

  // 5. head: modulation + e (not e0), then unpatchify (token features ordered (ph, pw, C))
  const headTable = get(weights, 'head.modulation').data; // [1, 2, d]
  const xn = layerNorm(x, L, d, eps);
  const hIn = new Float64Array(L * d);
  for (let n = 0; n < L; n++) {
    for (let i = 0; i < d; i++) {
      const shift = headTable[i] + e[frameOf(n) * d + i];
      const scale = headTable[d + i] + e[frameOf(n) * d + i];
      hIn[n * d + i] = xn[n * d + i] * (1 + scale) + shift;
    }
  }
  const out = linear(hIn, L, weights, 'head.head'); // [L, ph*pw*C]
  const features = ph * pw * C;
  const flow = new Float32Array(C * F * H * W);
  for (let f = 0; f < F; f++) {
    for (let t = 0; t < T; t++) {
      const r = Math.floor(t / gw);
      const c = t % gw;
      for (let i = 0; i < ph; i++) {
        for (let j = 0; j < pw; j++) {
          for (let ch = 0; ch < C; ch++) {
            flow[((ch * F + f) * H + r * ph + i) * W + c * pw + j] = out[(f * T + t) * features + (i * pw + j) * C + ch];
          }
        }
      }
    }
  }
  return { flow, keys, values, queries, querySums };
}

/**
 * The cache after `update`: new row = sum over terms of weight * [current ‖ pending][source], for
 * keys and values alike, positions from the update. `pending` holds per layer [P, d] keys/values.
 */
export function referenceCacheUpdate(
  dims: Pick<ModelDims, 'dim' | 'layers'>,
  current: ReferenceCacheLayer[],
  pending: Array<{ rows: number; keys: Float32Array; values: Float32Array }>,
  update: CacheUpdate,
): ReferenceCacheLayer[] {
  const d = dims.dim;
  const { rows, terms } = update;
  const out: ReferenceCacheLayer[] = [];
  for (let li = 0; li < dims.layers; li++) {
    const tab = update.perLayer ? li : 0;
    const cur = current[li];
    const pen = pending[li];
    const source = (index: number, kind: 'keys' | 'values'): Float32Array =>
      index < cur.rows ? cur[kind].subarray(index * d, (index + 1) * d) : pen[kind].subarray((index - cur.rows) * d, (index - cur.rows + 1) * d);
    const keys = new Float32Array(rows * d);
    const values = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const k = new Float64Array(d);
      const v = new Float64Array(d);
      for (let t = 0; t < terms; t++) {
        const at = (tab * rows + r) * terms + t;
        const w = update.weights[at];
        if (w === 0) continue;
        const sk = source(update.sources[at], 'keys');
        const sv = source(update.sources[at], 'values');
        for (let i = 0; i < d; i++) {
          k[i] += w * sk[i];
          v[i] += w * sv[i];
        }
      }
      keys.set(k, r * d);
      values.set(v, r * d);
    }
    out.push({ rows, keys, values, positions: update.positions.slice(tab * rows * 3, (tab + 1) * rows * 3) });
  }
  return out;
}

/**
 * Participative-compression scores of one layer's cache rows: phi_j = (q . rot(k_j)) / (heads *
 * sqrt(headDim)) with q = the sum of `queries` ([Q, d], RoPE'd) for 'sum', or the max over the
 * individual queries' full-dim dot products for 'max'.
 */
export function referenceScores(dims: ModelDims, cache: ReferenceCacheLayer, queries: Float32Array, reduce: 'sum' | 'max'): Float32Array {
  const d = dims.dim;
  const Q = queries.length / d;
  const norm = dims.heads * Math.sqrt(dims.headDim);
  const out = new Float32Array(cache.rows);
  const qSum = new Float64Array(d);
  for (let r = 0; r < Q; r++) for (let i = 0; i < d; i++) qSum[i] += queries[r * d + i];
  for (let j = 0; j < cache.rows; j++) {
    const k = ropeRotate(dims, cache.keys.subarray(j * d, (j + 1) * d), cache.positions.subarray(j * 3, j * 3 + 3));
    if (reduce === 'sum') {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += qSum[i] * k[i];
      out[j] = dot / norm;
    } else {
      let best = -Infinity;
      for (let r = 0; r < Q; r++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += queries[r * d + i] * k[i];
        if (dot > best) best = dot;
      }
      out[j] = best / norm;
    }
  }
  return out;
}
