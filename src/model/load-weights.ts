/**
 * The model's weights from the configuration: seeded synthetic weights, or a checkpoint
 * (.safetensors, or a PyTorch .pt / .pth as torch.save writes it) in Wan or diffusers naming, checked
 * key by key against the configured shape before any tensor data is read; then the configured LoRA,
 * if any, merged in.
 *
 * A checkpoint holding several models (Self-Forcing's `{'generator': ..., 'generator_ema': ...}`, a
 * trainer's `{'generator', 'critic', ...}`) gives its generator: `model.generatorKey`, else
 * `generator_ema` (what the papers' inference loads), else `generator`; other entries are not read.
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { modelDims, type ModelDims } from './dims.js';
import { expectedShapes, formatShape, OPTIONAL_KEYS, TEXT_ENCODER_KEYS } from './expected-shapes.js';
import { mapKeys, toDiffusersKey, type KeyMapping, type KeyNaming } from './key-names.js';
import { applyLora, readLora } from './lora.js';
import { syntheticWeights } from './synthetic.js';
import { openCheckpoint, type CheckpointReader } from './torch-checkpoint.js';
import type { ModelWeights, WeightTensor } from './weights.js';
import { firstNonFinite } from '../util/float32.js';

/** Top-level entries tried, in order, when `model.generatorKey` is not set. */
export const GENERATOR_KEYS = ['generator_ema', 'generator'] as const;

export async function loadWeights(config: Pick<Config, 'model'>): Promise<ModelWeights> {
  const dims = modelDims(config);
  const m = config.model;
  const weights =
    m.weights === 'synthetic'
      ? syntheticWeights(dims, m.syntheticSeed, m.syntheticScale)
      : await loadCheckpointWeights(m.weights, dims, { generatorKey: m.generatorKey });
  if (m.lora !== undefined) {
    applyLora(weights, await readLora(m.lora), { scale: m.loraScale, alpha: m.loraAlpha });
    for (const [key, tensor] of weights) checkFinite(tensor, `${m.lora} (model.lora) merged into ${m.weights}`, key);
  }
  return weights;
}

/**
 * Checks the configured weights as loadWeights reads them (file, keys, shapes, finite values) without
 * keeping them: a checkpoint is read one tensor at a time, synthetic weights are not made.
 */
export async function checkWeights(config: Pick<Config, 'model'>): Promise<void> {
  const m = config.model;
  if (m.lora !== undefined) {
    await loadWeights(config); // the merged values are what must be finite
    return;
  }
  if (m.weights === 'synthetic') return;
  await readCheckpointWeights(m.weights, modelDims(config), { generatorKey: m.generatorKey }, false);
}

/**
 * ERR_MODEL_FILE naming a tensor that holds a NaN or an infinity: such weights turn every output
 * into NaN (a black video) instead of failing.
 */
function checkFinite(tensor: WeightTensor, label: string, key: string, name = key): void {
  const at = firstNonFinite(tensor.data);
  if (at < 0) return;
  throw new SinkstreamError(
    'ERR_MODEL_FILE',
    `${label}: tensor '${name}'${name !== key ? ` (${key})` : ''} holds ${tensor.data[at]} at element ${at} of ${tensor.data.length}; ` +
      'expected finite weights (the file is corrupt, or was saved after training diverged)',
  );
}

/** The generator's part of a checkpoint: its keys as the file spells them, and the prefix they share. */
export interface GeneratorSelection {
  /** `generator_ema.` etc., or '' for a plain state dict. */
  prefix: string;
  keys: string[];
}

/** Picks the generator's tensors among a checkpoint's (flattened) keys. */
export function selectGenerator(keys: readonly string[], file: string, generatorKey?: string): GeneratorSelection {
  const under = (name: string): string[] => keys.filter((k) => k.startsWith(`${name}.`));
  if (generatorKey !== undefined) {
    const selected = under(generatorKey);
    if (selected.length === 0) {
      const top = [...new Set(keys.map((k) => k.split('.')[0]))].slice(0, 12);
      throw new SinkstreamError(
        'ERR_MODEL_FILE',
        `${file}: no entry '${generatorKey}' (model.generatorKey); its top-level entries are ${top.map((t) => `'${t}'`).join(', ')}`,
      );
    }
    return { prefix: `${generatorKey}.`, keys: selected };
  }
  for (const name of GENERATOR_KEYS) {
    const selected = under(name);
    if (selected.length > 0) return { prefix: `${name}.`, keys: selected };
  }
  return { prefix: '', keys: [...keys] };
}

/** An open checkpoint's generator, its keys mapped to canonical names (source keys are the file's). */
export interface MappedCheckpoint {
  reader: CheckpointReader;
  /** The chosen entry's prefix (`generator_ema.`), '' for a plain state dict. */
  prefix: string;
  mapping: KeyMapping;
  /** canonical -> key in the file */
  sourceOf: Map<string, string>;
  /** How the file and entry are named in messages. */
  label: string;
}

export async function openMappedCheckpoint(path: string, generatorKey?: string): Promise<MappedCheckpoint> {
  const reader = await openCheckpoint(path);
  try {
    const { prefix, keys } = selectGenerator(reader.keys(), path, generatorKey);
    const label = prefix === '' ? path : `${path} (entry '${prefix.slice(0, -1)}')`;
    const mapping = mapKeys(
      keys.map((k) => k.slice(prefix.length)),
      label,
      (k) => reader.entries.get(prefix + k)?.shape,
    );
    const toCanonical = new Map<string, string>();
    const sourceOf = new Map<string, string>();
    for (const [bare, canonical] of mapping.toCanonical) {
      toCanonical.set(prefix + bare, canonical);
      sourceOf.set(canonical, prefix + bare);
    }
    return { reader, prefix, mapping: { ...mapping, toCanonical, ignored: mapping.ignored.map((k) => prefix + k) }, sourceOf, label };
  } catch (e) {
    await reader.close();
    throw e;
  }
}

/**
 * Only the built-in text encoder's tables (the word table and, when the model has them, the neighbour
 * tables), read from the configured checkpoint under any naming or wrapper (an empty map for synthetic
 * weights or a checkpoint without them). The full model is not read.
 */
export async function loadTextEncoderTables(config: Pick<Config, 'model'>): Promise<ModelWeights> {
  const weights: ModelWeights = new Map();
  if (config.model.weights === 'synthetic') return weights;
  const { reader, sourceOf, label } = await openMappedCheckpoint(config.model.weights, config.model.generatorKey);
  try {
    for (const key of TEXT_ENCODER_KEYS) {
      const source = sourceOf.get(key);
      if (source === undefined) continue;
      const table = await reader.read(source);
      checkFinite(table, label, key, source);
      weights.set(key, table);
    }
    return weights;
  } finally {
    await reader.close();
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function describeArch(dims: ModelDims): string {
  return `model.arch dim ${dims.dim}, layers ${dims.layers}, ffnDim ${dims.ffnDim}, textDim ${dims.textDim}, latentChannels ${dims.latentChannels}, patch ${formatShape(dims.patch)}`;
}

export interface CheckpointLoadOptions {
  generatorKey?: string;
}

/**
 * Reads a checkpoint's generator and checks every key and shape against `dims` (ERR_MODEL_SHAPE
 * names the first wrong key) and every value (ERR_MODEL_FILE names the first tensor with a NaN or
 * an infinity).
 */
export async function loadCheckpointWeights(path: string, dims: ModelDims, options: CheckpointLoadOptions = {}): Promise<ModelWeights> {
  return readCheckpointWeights(path, dims, options, true);
}

/** loadCheckpointWeights; with `keep` false each tensor is checked and let go (checkWeights). */
async function readCheckpointWeights(path: string, dims: ModelDims, options: CheckpointLoadOptions, keep: boolean): Promise<ModelWeights> {
  const { reader, mapping, sourceOf, label } = await openMappedCheckpoint(path, options.generatorKey);
  try {
    const expected = expectedShapes(dims);
    const shapeError = (msg: string): SinkstreamError =>
      new SinkstreamError('ERR_MODEL_SHAPE', `${label}: ${msg} (configured ${describeArch(dims)}).`);
    const nameIn = (naming: KeyNaming, key: string): string => (naming === 'diffusers' ? toDiffusersKey(key) : key);

    for (const [key, shape] of expected) {
      const source = sourceOf.get(key);
      if (source === undefined) {
        const asNamed = nameIn(mapping.naming, key);
        throw shapeError(`missing key '${key}'${asNamed !== key ? ` ('${asNamed}' in ${mapping.naming} naming)` : ''}, expected shape ${formatShape(shape)}`);
      }
      const actual = reader.entries.get(source)!.shape;
      if (!sameShape(actual, shape)) {
        throw shapeError(`key '${source}'${source !== key ? ` (${key})` : ''} has shape ${formatShape(actual)}, expected ${formatShape(shape)}`);
      }
    }
    for (const [key, source] of sourceOf) {
      if (expected.has(key)) continue;
      if (TEXT_ENCODER_KEYS.has(key)) {
        const actual = reader.entries.get(source)!.shape;
        if (actual.length !== 2 || actual[1] !== dims.textDim || actual[0] < 1) {
          throw shapeError(`key '${source}' has shape ${formatShape(actual)}, expected [vocabSize, ${dims.textDim}]`);
        }
        continue;
      }
      if (!OPTIONAL_KEYS.has(key)) {
        throw shapeError(`key '${source}' (${key}) of shape ${formatShape(reader.entries.get(source)!.shape)} is not part of the configured model (more layers than model.arch.layers?)`);
      }
    }

    const weights: ModelWeights = new Map();
    for (const [key, source] of sourceOf) {
      const tensor = await reader.read(source);
      checkFinite(tensor, label, key, source);
      if (keep) weights.set(key, tensor);
    }
    return weights;
  } finally {
    await reader.close();
  }
}

