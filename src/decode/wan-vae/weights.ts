/**
 * The Wan VAE decoder's weights: seeded synthetic ones at any shape, or read from a checkpoint
 * (`.safetensors`, or the published `.pth`) where only `conv2.*` and `decoder.*` are read (the
 * encoder's half of Wan2.1_VAE.pth is skipped). Every expected key is checked for its shape
 * before anything is read; ERR_MODEL_SHAPE names the first wrong key.
 *
 * Synthetic distributions (same generator as src/model/synthetic.ts: each tensor its own stream
 * seeded by fnv1a32(key) XOR seed): conv weights std 1 / sqrt(fan_in), biases std 0.02, RMS_norm
 * gammas 1 + N(0, 0.05^2). The un-normalised decoder stays tame: every conv follows an RMS_norm.
 */
import { SinkstreamError } from '../../errors.js';
import { shapeSize } from '../../model/expected-shapes.js';
import { fillNormal, fnv1a32 } from '../../model/synthetic.js';
import { openCheckpoint } from '../../model/torch-checkpoint.js';
import type { ModelWeights, WeightTensor } from '../../model/weights.js';
import { decoderWeightShapes, WAN21_VAE_ARCH, type WanVaeArch } from './arch.js';

export function wanVaeSyntheticDistribution(key: string, shape: readonly number[]): { mean: number; std: number } {
  if (key.endsWith('.gamma')) return { mean: 1, std: 0.05 };
  if (key.endsWith('.bias')) return { mean: 0, std: 0.02 };
  return { mean: 0, std: 1 / Math.sqrt(shapeSize(shape.slice(1))) };
}

export function syntheticWanVaeWeights(arch: WanVaeArch, seed: number): ModelWeights {
  const weights: ModelWeights = new Map();
  for (const [key, shape] of decoderWeightShapes(arch)) {
    const { mean, std } = wanVaeSyntheticDistribution(key, shape);
    const data = new Float32Array(shapeSize(shape));
    fillNormal(data, (fnv1a32(key) ^ seed) >>> 0, mean, std);
    weights.set(key, { shape: [...shape], data });
  }
  return weights;
}

/** A checkpoint opened for reading tensors by name. */
export interface TensorSource {
  readonly path: string;
  keys(): string[];
  shape(key: string): number[];
  read(key: string): Promise<WeightTensor>;
  close(): Promise<void>;
}

const formatShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * The architecture a checkpoint holds: the published one, with the base width read from the head
 * (`decoder.head.2.weight` [3, dim, 3, 3, 3]) and the latent channels from `conv2.weight`, so that
 * small test checkpoints of the same layout load too.
 */
export function archOfCheckpoint(source: Pick<TensorSource, 'path' | 'keys' | 'shape'>): WanVaeArch {
  const keys = new Set(source.keys());
  for (const key of ['decoder.head.2.weight', 'conv2.weight']) {
    if (!keys.has(key)) {
      throw new SinkstreamError(
        'ERR_MODEL_SHAPE',
        `decoder.weights ${source.path}: missing key '${key}' (a Wan2.1 VAE checkpoint: Wan2.1_VAE.pth or its safetensors, original key names)`,
      );
    }
  }
  const head = source.shape('decoder.head.2.weight');
  const conv2 = source.shape('conv2.weight');
  if (head.length !== 5 || head[0] !== 3 || conv2.length !== 5 || conv2[0] !== conv2[1]) {
    throw new SinkstreamError(
      'ERR_MODEL_SHAPE',
      `decoder.weights ${source.path}: key 'decoder.head.2.weight' has shape ${formatShape(head)} and 'conv2.weight' ${formatShape(conv2)}; expected [3, dim, 3, 3, 3] and [z, z, 1, 1, 1]`,
    );
  }
  return { ...WAN21_VAE_ARCH, dim: head[1], zDim: conv2[0] };
}

/** Checks every decoder key's shape, then reads them (float32). */
export async function readWanVaeWeights(source: TensorSource, arch: WanVaeArch): Promise<ModelWeights> {
  const keys = new Set(source.keys());
  const expected = decoderWeightShapes(arch);
  for (const [key, shape] of expected) {
    if (!keys.has(key)) {
      throw new SinkstreamError('ERR_MODEL_SHAPE', `decoder.weights ${source.path}: missing key '${key}', expected shape ${formatShape(shape)}`);
    }
    const actual = source.shape(key);
    if (actual.length !== shape.length || actual.some((v, i) => v !== shape[i])) {
      throw new SinkstreamError('ERR_MODEL_SHAPE', `decoder.weights ${source.path}: key '${key}' has shape ${formatShape(actual)}, expected ${formatShape(shape)}`);
    }
  }
  const weights: ModelWeights = new Map();
  for (const key of expected.keys()) weights.set(key, await source.read(key));
  return weights;
}

/** The decoder's weights from a checkpoint file (torch.save zip or safetensors, by content), with the architecture it holds. */
export async function loadWanVaeWeights(path: string): Promise<{ arch: WanVaeArch; weights: ModelWeights }> {
  const reader = await openCheckpoint(path);
  const source: TensorSource = {
    path,
    keys: () => reader.keys(),
    shape: (key) => [...reader.entries.get(key)!.shape],
    read: (key) => reader.read(key),
    close: () => reader.close(),
  };
  try {
    const arch = archOfCheckpoint(source);
    return { arch, weights: await readWanVaeWeights(source, arch) };
  } finally {
    await source.close();
  }
}
