/**
 * The model's weights from the configuration: seeded synthetic weights, or a .safetensors
 * checkpoint in Wan or diffusers naming, checked key by key against the configured shape before
 * any tensor data is read.
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { modelDims, type ModelDims } from './dims.js';
import { expectedShapes, formatShape, OPTIONAL_KEYS, TEXT_EMBEDDING_KEY } from './expected-shapes.js';
import { mapKeys, toDiffusersKey, type KeyNaming } from './key-names.js';
import { SafetensorsFile } from './safetensors.js';
import { syntheticWeights } from './synthetic.js';
import type { ModelWeights } from './weights.js';

export async function loadWeights(config: Pick<Config, 'model'>): Promise<ModelWeights> {
  const dims = modelDims(config);
  if (config.model.weights === 'synthetic') {
    return syntheticWeights(dims, config.model.syntheticSeed, config.model.syntheticScale);
  }
  return loadSafetensorsWeights(config.model.weights, dims);
}

/**
 * Only the built-in text encoder's table, read from the configured checkpoint under any naming or
 * wrapper (an empty map for synthetic weights or a checkpoint without one). The full model is not read.
 */
export async function loadTextEmbeddingTable(config: Pick<Config, 'model'>): Promise<ModelWeights> {
  const weights: ModelWeights = new Map();
  if (config.model.weights === 'synthetic') return weights;
  const file = await SafetensorsFile.open(config.model.weights);
  try {
    for (const [source, canonical] of mapKeys(file.keys(), config.model.weights).toCanonical) {
      if (canonical === TEXT_EMBEDDING_KEY) weights.set(canonical, await file.read(source));
    }
    return weights;
  } finally {
    await file.close();
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function describeArch(dims: ModelDims): string {
  return `model.arch dim ${dims.dim}, layers ${dims.layers}, ffnDim ${dims.ffnDim}, textDim ${dims.textDim}, latentChannels ${dims.latentChannels}, patch ${formatShape(dims.patch)}`;
}

/** Reads a checkpoint and checks every key and shape against `dims` (ERR_MODEL_SHAPE names the first wrong key). */
export async function loadSafetensorsWeights(path: string, dims: ModelDims): Promise<ModelWeights> {
  const file = await SafetensorsFile.open(path);
  try {
    const mapping = mapKeys(file.keys(), path);
    const sourceOf = new Map<string, string>();
    for (const [source, canonical] of mapping.toCanonical) sourceOf.set(canonical, source);
    const expected = expectedShapes(dims);
    const shapeError = (msg: string): SinkstreamError =>
      new SinkstreamError('ERR_MODEL_SHAPE', `${path}: ${msg} (configured ${describeArch(dims)}).`);
    const nameIn = (naming: KeyNaming, key: string): string => (naming === 'diffusers' ? toDiffusersKey(key) : key);

    for (const [key, shape] of expected) {
      const source = sourceOf.get(key);
      if (source === undefined) {
        const asNamed = nameIn(mapping.naming, key);
        throw shapeError(`missing key '${key}'${asNamed !== key ? ` ('${asNamed}' in ${mapping.naming} naming)` : ''}, expected shape ${formatShape(shape)}`);
      }
      const actual = file.entries.get(source)!.shape;
      if (!sameShape(actual, shape)) {
        throw shapeError(`key '${source}'${source !== key ? ` (${key})` : ''} has shape ${formatShape(actual)}, expected ${formatShape(shape)}`);
      }
    }
    for (const [key, source] of sourceOf) {
      if (expected.has(key)) continue;
      if (key === TEXT_EMBEDDING_KEY) {
        const actual = file.entries.get(source)!.shape;
        if (actual.length !== 2 || actual[1] !== dims.textDim || actual[0] < 1) {
          throw shapeError(`key '${source}' has shape ${formatShape(actual)}, expected [vocabSize, ${dims.textDim}]`);
        }
        continue;
      }
      if (!OPTIONAL_KEYS.has(key)) {
        throw shapeError(`key '${source}' (${key}) is not part of the configured model (more layers than model.arch.layers?)`);
      }
    }

    const weights: ModelWeights = new Map();
    for (const [key, source] of sourceOf) weights.set(key, await file.read(source));
    return weights;
  } finally {
    await file.close();
  }
}
