/** What the engine's cross-attention reads: one prompt -> context [textLen, textDim], zero-padded (a prompt encoder; not the web platform's TextEncoder). */
import type { Config } from '../config/schema.js';
import type { ModelWeights } from '../model/weights.js';
import { modelDims } from '../model/dims.js';
import { SinkstreamError } from '../errors.js';
import { BuiltinPromptEncoder, loadVocabulary } from './builtin-encoder.js';
import { PrecomputedPromptEncoder } from './precomputed-encoder.js';
import { acquireUmt5Encoder } from './shared-text-encoder.js';
import { loadSceneSpec } from '../scene/scene-spec.js';
import { TrainedScenePromptEncoder } from './trained-scene-prompts.js';

export interface PromptEncoder {
  readonly kind: 'builtin' | 'precomputed' | 'umt5';
  readonly textLen: number;
  readonly textDim: number;
  /**
   * [textLen, textDim] row-major float32, the caller's own copy; fails with SinkstreamError('ERR_PROMPT')
   * for a prompt it cannot encode. umt5 answers later (the encoder runs on its own thread): await it.
   */
  encode(prompt: string): Float32Array | Promise<Float32Array>;
  /** Releases what the encoder holds (umt5: its share of the process's encoder). */
  close?(): Promise<void>;
}

/**
 * The configured encoder. A model with a scene spec read through the built-in vocabulary (the demo
 * model) passes only the prompts of its training grammar (trained-scene-prompts.ts).
 */
export async function createPromptEncoder(config: Pick<Config, 'model' | 'text'>, weights: ModelWeights): Promise<PromptEncoder> {
  const trainedScenes = config.model.scene !== undefined && config.text.encoder === 'builtin';
  const spec = trainedScenes ? loadSceneSpec(config.model.scene!) : undefined;
  const encoder = await createConfiguredEncoder(config, weights);
  return spec === undefined ? encoder : new TrainedScenePromptEncoder(encoder, spec);
}

async function createConfiguredEncoder(config: Pick<Config, 'model' | 'text'>, weights: ModelWeights): Promise<PromptEncoder> {
  const dims = modelDims(config);
  if (config.text.encoder === 'umt5') return acquireUmt5Encoder(config);
  if (config.text.encoder === 'precomputed') {
    if (!config.text.path) {
      throw new SinkstreamError('ERR_CONFIG_INVALID', "text.path: required when text.encoder is 'precomputed' (a .safetensors file with a `context` tensor, see docs/text-embeddings.md)");
    }
    return PrecomputedPromptEncoder.open(config.text.path, dims.textLen, dims.textDim, { fallback: config.text.fallback });
  }
  const vocabulary = loadVocabulary(config.text.vocab);
  return BuiltinPromptEncoder.fromWeights(vocabulary, dims.textLen, dims.textDim, weights, config.model.syntheticSeed);
}
