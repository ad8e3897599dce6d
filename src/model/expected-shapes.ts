/**
 * Every canonical (original Wan) weight key (docs/model.md) with its PyTorch shape, derived from the
 * model's dims. Linear weights are [out, in]; the loader, the synthetic generator and the engines
 * all agree on this one table.
 */
import type { ModelDims } from './dims.js';

/** The built-in text encoder's embedding table [vocabSize, textDim]; only small demo models ship it. */
export const TEXT_EMBEDDING_KEY = 'text_encoder.embedding.weight';

/**
 * The built-in text encoder's neighbour tables [vocabSize, textDim], both or neither: a word's context row
 * also adds the previous word's row of the first and the next word's row of the second (src/text/builtin-encoder.ts).
 */
export const TEXT_NEIGHBOUR_KEYS = ['text_encoder.previous.weight', 'text_encoder.next.weight'] as const;

/** Every table of the built-in text encoder: they run on the host, never in an engine. */
export const TEXT_ENCODER_KEYS: ReadonlySet<string> = new Set([TEXT_EMBEDDING_KEY, ...TEXT_NEIGHBOUR_KEYS]);

/** Keys a checkpoint may carry or omit. */
export const OPTIONAL_KEYS: ReadonlySet<string> = TEXT_ENCODER_KEYS;

export interface ExpectedShapesOptions {
  /** When given, the optional built-in text embedding table [textVocabSize, textDim] is included. */
  textVocabSize?: number;
}

export function expectedShapes(dims: ModelDims, options: ExpectedShapesOptions = {}): Map<string, number[]> {
  const { dim, ffnDim, freqDim, textDim, latentChannels, patch } = dims;
  const shapes = new Map<string, number[]>();
  const linear = (name: string, out: number, inp: number): void => {
    shapes.set(`${name}.weight`, [out, inp]);
    shapes.set(`${name}.bias`, [out]);
  };

  shapes.set('patch_embedding.weight', [dim, latentChannels, patch[0], patch[1], patch[2]]);
  shapes.set('patch_embedding.bias', [dim]);
  linear('text_embedding.0', dim, textDim);
  linear('text_embedding.2', dim, dim);
  linear('time_embedding.0', dim, freqDim);
  linear('time_embedding.2', dim, dim);
  linear('time_projection.1', 6 * dim, dim);

  for (let i = 0; i < dims.layers; i++) {
    const b = `blocks.${i}`;
    for (const attn of ['self_attn', 'cross_attn']) {
      for (const p of ['q', 'k', 'v', 'o']) linear(`${b}.${attn}.${p}`, dim, dim);
      shapes.set(`${b}.${attn}.norm_q.weight`, [dim]);
      shapes.set(`${b}.${attn}.norm_k.weight`, [dim]);
    }
    shapes.set(`${b}.norm3.weight`, [dim]);
    shapes.set(`${b}.norm3.bias`, [dim]);
    linear(`${b}.ffn.0`, ffnDim, dim);
    linear(`${b}.ffn.2`, dim, ffnDim);
    shapes.set(`${b}.modulation`, [1, 6, dim]);
  }

  linear('head.head', dims.patchFeatures, dim);
  shapes.set('head.modulation', [1, 2, dim]);

  if (options.textVocabSize !== undefined) shapes.set(TEXT_EMBEDDING_KEY, [options.textVocabSize, textDim]);
  return shapes;
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
