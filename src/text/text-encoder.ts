/** What the engine's cross-attention reads: one prompt -> context [textLen, textDim], zero-padded. */
import type { Config } from '../config/schema.js';
import type { ModelWeights } from '../model/weights.js';
import { modelDims } from '../model/dims.js';
import { SinkstreamError } from '../errors.js';
import { BuiltinTextEncoder, loadVocabulary } from './builtin-encoder.js';
import { PrecomputedTextEncoder } from './precomputed-encoder.js';

export interface TextEncoder {
  readonly kind: 'builtin' | 'precomputed';
  readonly textLen: number;
  readonly textDim: number;
  /** [textLen, textDim] row-major float32; throws SinkstreamError('ERR_PROMPT') for a prompt it cannot encode. */
  encode(prompt: string): Float32Array;
}

export async function createTextEncoder(config: Pick<Config, 'model' | 'text'>, weights: ModelWeights): Promise<TextEncoder> {
  const dims = modelDims(config);
  if (config.text.encoder === 'precomputed') {
    if (!config.text.path) {
      throw new SinkstreamError('ERR_CONFIG_INVALID', "text.path: required when text.encoder is 'precomputed' (a .safetensors file with a `context` tensor, see docs/text-embeddings.md)");
    }
    return PrecomputedTextEncoder.open(config.text.path, dims.textLen, dims.textDim);
  }
  const vocabulary = loadVocabulary(config.text.vocab);
  return BuiltinTextEncoder.fromWeights(vocabulary, dims.textLen, dims.textDim, weights, config.model.syntheticSeed);
}
