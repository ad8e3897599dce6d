/**
 * Seeded random weights for any model shape: tests, benchmarks of the real 1.3B shape without a
 * checkpoint, and the demo when no trained file is given.
 *
 * Exactly reproducible elsewhere (e.g. numpy with uint32 arithmetic):
 *   - each tensor has its own stream, seeded from (seed, key): s = fnv1a32(key) XOR seed (low 32 bits);
 *     the four xoshiro128** state words are successive outputs of splitmix32 started at s;
 *   - element i (row-major) takes the i-th xoshiro128** output r (uint32) and
 *     z = (byte0(r) + byte1(r) + byte2(r) + byte3(r) - 510) / sqrt(4 * 65535 / 12),
 *     value = float32(mean + std * z)  (computed in float64 as c + k * bytesum, k = std / 73.9003..., c = mean - 510 k).
 *   z is a unit-variance, symmetric bell (Irwin-Hall of 4 bytes, bounded at +-3.45): not Box-Muller,
 *   because one integer draw per element and no logarithm keeps the 1.42 B-parameter shape fast.
 * Distributions (scale = `scale`):
 *   Linear / Conv weight: std = scale / sqrt(fan_in)   bias: std = 0.02 * scale
 *   RMSNorm / norm3 weight: 1 + N(0, 0.05^2)          norm3 bias: std = 0.02
 *   modulation tables: std = 0.02 * scale             text embedding table: std = 1
 * Deep random models stay tame: LayerNorm before every sub-layer, unit-gain linears, small biases.
 */
import type { ModelDims } from './dims.js';
import type { ModelWeights, WeightTensor } from './weights.js';
import { expectedShapes, shapeSize, TEXT_EMBEDDING_KEY } from './expected-shapes.js';

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32 (the 32-bit variant of Vigna's splitmix). Returns [next output, next state]. */
/** Sum of 4 independent uniform bytes: mean 4 * 127.5, variance 4 * (256^2 - 1) / 12. */
const BYTE_SUM_MEAN = 510;
const BYTE_SUM_STD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z = (z ^ (z >>> 16)) >>> 0;
  return [z, next];
}

/** Fills `out` with mean + std * z, z ~ unit-variance bell (4 summed bytes), from the stream `streamSeed`. */
export function fillNormal(out: Float32Array, streamSeed: number, mean: number, std: number): void {
  let state = streamSeed >>> 0;
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [z, next] = splitmix32(state);
    words.push(z);
    state = next;
  }
  let s0 = words[0] | 0;
  let s1 = words[1] | 0;
  let s2 = words[2] | 0;
  let s3 = words[3] | 0;
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1; // xoshiro's one forbidden state
  const k = std / BYTE_SUM_STD;
  const c = mean - k * BYTE_SUM_MEAN;
  const n = out.length;
  for (let i = 0; i < n; i++) {
    // xoshiro128**: result = rotl(s1 * 5, 7) * 9
    let t = Math.imul(s1, 5);
    const r = Math.imul((t << 7) | (t >>> 25), 9);
    t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    out[i] = c + k * ((r & 0xff) + ((r >>> 8) & 0xff) + ((r >>> 16) & 0xff) + (r >>> 24));
  }
}

function tensorSeed(seed: number, key: string): number {
  return (fnv1a32(key) ^ seed) >>> 0;
}

function normalTensor(shape: number[], seed: number, key: string, mean: number, std: number): WeightTensor {
  const data = new Float32Array(shapeSize(shape));
  if (std === 0) data.fill(mean);
  else fillNormal(data, tensorSeed(seed, key), mean, std);
  return { shape, data };
}

/** Mean and standard deviation of one canonical key's synthetic distribution. */
export function syntheticDistribution(key: string, shape: number[], scale: number): { mean: number; std: number } {
  if (key === TEXT_EMBEDDING_KEY) return { mean: 0, std: 1 };
  if (key.endsWith('modulation')) return { mean: 0, std: 0.02 * scale };
  if (/norm_[qk]\.weight$/.test(key) || key.endsWith('norm3.weight')) return { mean: 1, std: 0.05 };
  if (key.endsWith('norm3.bias')) return { mean: 0, std: 0.02 };
  if (key.endsWith('.bias')) return { mean: 0, std: 0.02 * scale };
  // Linear [out, in] and Conv3d [out, in, kt, kh, kw]: fan_in is everything after the first dim.
  const fanIn = shapeSize(shape.slice(1));
  return { mean: 0, std: scale / Math.sqrt(fanIn) };
}

export function syntheticWeights(dims: ModelDims, seed: number, scale = 1): ModelWeights {
  const weights: ModelWeights = new Map();
  for (const [key, shape] of expectedShapes(dims)) {
    const { mean, std } = syntheticDistribution(key, shape, scale);
    weights.set(key, normalTensor(shape, seed, key, mean, std));
  }
  return weights;
}

/** The built-in text encoder's table [vocabSize, textDim] when the weights do not carry one. */
export function syntheticTextTable(vocabSize: number, textDim: number, seed: number): WeightTensor {
  return normalTensor([vocabSize, textDim], seed, TEXT_EMBEDDING_KEY, 0, 1);
}
