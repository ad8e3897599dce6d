/**
 * The umT5 encoder's shape and weights: Wan2.1's `models_t5_umt5-xxl-enc-bf16.pth` (a T5 encoder
 * state dict, no prefix) or the same names in safetensors, or seeded synthetic weights.
 *
 * Keys (Wan's wan/modules/t5.py, shared_pos=False):
 *   token_embedding.weight [vocab, dim]          norm.weight [dim]
 *   blocks.N.norm1.weight / norm2.weight [dim]
 *   blocks.N.attn.{q,k,v,o}.weight [dim, dim]    (dim_attn = dim; no biases anywhere)
 *   blocks.N.ffn.gate.0.weight, ffn.fc1.weight [ffnDim, dim]   blocks.N.ffn.fc2.weight [dim, ffnDim]
 *   blocks.N.pos_embedding.embedding.weight [buckets, heads]
 *
 * Synthetic weights (src/model/synthetic.ts's generator, stream seed fnv1a32(key) XOR seed; the
 * PyTorch reference tools/reference/umt5.py reproduces them): embedding N(0, 1), norms 1 + N(0, 0.05^2),
 * q and k std 1 / (sqrt(dim) * headDim^(1/4)) (attention logits of unit scale, as T5 does not scale
 * them), position bias std 0.5, other linears std 1 / sqrt(fan_in).
 */
import type { ModelWeights, WeightTensor } from '../model/weights.js';
import { fillNormal, fnv1a32 } from '../model/synthetic.js';
import { formatShape, shapeSize } from '../model/expected-shapes.js';
import { openCheckpoint } from '../model/torch-checkpoint.js';
import { SinkstreamError } from '../errors.js';

export interface Umt5Arch {
  dim: number;
  layers: number;
  heads: number;
  ffnDim: number;
  vocab: number;
  buckets: number;
  maxDistance: number;
  eps: number;
}

/** umT5-XXL's encoder, as Wan2.1 uses it. */
export const UMT5_XXL: Umt5Arch = { dim: 4096, layers: 24, heads: 64, ffnDim: 10240, vocab: 256384, buckets: 32, maxDistance: 128, eps: 1e-6 };

export const UMT5_EMBEDDING_KEY = 'token_embedding.weight';

export function umt5Shapes(a: Umt5Arch): Map<string, number[]> {
  const shapes = new Map<string, number[]>([[UMT5_EMBEDDING_KEY, [a.vocab, a.dim]]]);
  for (let i = 0; i < a.layers; i++) {
    const p = `blocks.${i}`;
    shapes.set(`${p}.norm1.weight`, [a.dim]);
    for (const m of ['q', 'k', 'v', 'o']) shapes.set(`${p}.attn.${m}.weight`, [a.dim, a.dim]);
    shapes.set(`${p}.norm2.weight`, [a.dim]);
    shapes.set(`${p}.ffn.gate.0.weight`, [a.ffnDim, a.dim]);
    shapes.set(`${p}.ffn.fc1.weight`, [a.ffnDim, a.dim]);
    shapes.set(`${p}.ffn.fc2.weight`, [a.dim, a.ffnDim]);
    shapes.set(`${p}.pos_embedding.embedding.weight`, [a.buckets, a.heads]);
  }
  shapes.set('norm.weight', [a.dim]);
  return shapes;
}

function syntheticDistribution(key: string, shape: number[], a: Umt5Arch): { mean: number; std: number } {
  if (key === UMT5_EMBEDDING_KEY) return { mean: 0, std: 1 };
  if (/(norm1|norm2)\.weight$/.test(key) || key === 'norm.weight') return { mean: 1, std: 0.05 };
  if (key.endsWith('pos_embedding.embedding.weight')) return { mean: 0, std: 0.5 };
  if (/attn\.[qk]\.weight$/.test(key)) return { mean: 0, std: 1 / Math.sqrt(a.dim) / (a.dim / a.heads) ** 0.25 };
  return { mean: 0, std: 1 / Math.sqrt(shape[1]) };
}

export function syntheticUmt5Weights(a: Umt5Arch, seed: number): ModelWeights {
  const weights: ModelWeights = new Map();
  for (const [key, shape] of umt5Shapes(a)) {
    const { mean, std } = syntheticDistribution(key, shape, a);
    const data = new Float32Array(shapeSize(shape));
    fillNormal(data, (fnv1a32(key) ^ seed) >>> 0, mean, std);
    weights.set(key, { shape, data });
  }
  return weights;
}

/** Checks every key and shape before reading anything: names the first wrong key and the arch it implies. */
export function checkUmt5Keys(keys: string[], shapeOf: (key: string) => number[], a: Umt5Arch, where: string): void {
  const expected = umt5Shapes(a);
  for (const key of keys) {
    if (!expected.has(key)) {
      throw new SinkstreamError('ERR_MODEL_SHAPE', `${where}: unexpected tensor '${key}' ${formatShape(shapeOf(key))}: not a umT5 encoder of ${a.layers} layers (text.arch)`);
    }
  }
  for (const [key, shape] of expected) {
    if (!keys.includes(key)) throw new SinkstreamError('ERR_MODEL_SHAPE', `${where}: missing tensor '${key}' (a umT5 encoder of ${a.layers} layers has it; text.arch)`);
    const got = shapeOf(key);
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new SinkstreamError('ERR_MODEL_SHAPE', `${where}: tensor '${key}' has shape ${formatShape(got)}, text.arch expects ${formatShape(shape)}`);
    }
  }
}

/** `text.weights`: 'synthetic' or a checkpoint (.pth as torch.save writes it, or .safetensors); every tensor as float32. */
export async function loadUmt5Weights(source: string, a: Umt5Arch, seed: number): Promise<ModelWeights> {
  if (source === 'synthetic') return syntheticUmt5Weights(a, seed);
  const file = await openCheckpoint(source);
  try {
    const keys = file.keys();
    checkUmt5Keys(keys, (k) => file.entries.get(k)!.shape, a, source);
    const weights: ModelWeights = new Map();
    for (const key of keys) weights.set(key, await file.read(key));
    return weights;
  } finally {
    await file.close();
  }
}
