/**
 * The built-in text encoder of small models (the bundled demo model):
 *   tokens  = splitWords(prompt), each looked up in the vocabulary (token id = index in the list);
 *   row i   = table[token_i] + PE(i), for i < number of tokens; rows past the prompt are zero
 *             (zero-padded to textLen like Wan's umT5 context);
 *             a model with neighbour tables also adds previous[token_(i-1)] (i > 0) and next[token_(i+1)]
 *             (i + 1 < number of tokens), so a word's row carries the words beside it;
 *   PE(i, 2k) = sin(i / 10000^(2k / textDim)), PE(i, 2k+1) = cos(i / 10000^(2k / textDim)).
 * Sums are computed in float64 and rounded once to float32. The table is the checkpoint's
 * `text_encoder.embedding.weight` [vocabSize, textDim] when present, else a synthetic table seeded
 * from model.syntheticSeed (src/model/synthetic.ts); the neighbour tables are the checkpoint's
 * `text_encoder.previous.weight` and `text_encoder.next.weight` (both or neither).
 */
import { readFileSync } from 'node:fs';
import { SinkstreamError } from '../errors.js';
import { formatShape, TEXT_EMBEDDING_KEY, TEXT_NEIGHBOUR_KEYS } from '../model/expected-shapes.js';
import { syntheticTextTable } from '../model/synthetic.js';
import type { ModelWeights, WeightTensor } from '../model/weights.js';
import { DEMO_VOCABULARY } from './demo-vocabulary.js';
import { splitWords } from './word-tokenizer.js';
import type { PromptEncoder } from './prompt-encoder.js';

/**
 * text.vocab: a JSON array of words, given inline (`'["a","red"]'`) or as a path to a .json file;
 * undefined = the demo vocabulary.
 */
export function loadVocabulary(vocab: string | undefined): string[] {
  if (vocab === undefined) return [...DEMO_VOCABULARY];
  let json = vocab;
  let where = 'text.vocab';
  if (!vocab.trimStart().startsWith('[')) {
    try {
      json = readFileSync(vocab, 'utf8');
      where = `text.vocab file ${vocab}`;
    } catch (e) {
      throw new SinkstreamError('ERR_MODEL_FILE', `text.vocab: cannot read ${vocab} (${(e as NodeJS.ErrnoException).code ?? String(e)}); expected a JSON array of words or a path to one`, { cause: e });
    }
  }
  let words: unknown;
  try {
    words = JSON.parse(json);
  } catch (e) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `${where}: not valid JSON; expected a JSON array of words`, { cause: e });
  }
  if (!Array.isArray(words) || words.length === 0 || !words.every((w) => typeof w === 'string')) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `${where}: expected a non-empty JSON array of words`);
  }
  const seen = new Set<string>();
  for (const w of words as string[]) {
    if (splitWords(w).length !== 1 || splitWords(w)[0] !== w) {
      throw new SinkstreamError('ERR_CONFIG_INVALID', `${where}: '${w}' is not a single lowercase word (letters only), so no prompt could produce it`);
    }
    if (seen.has(w)) throw new SinkstreamError('ERR_CONFIG_INVALID', `${where}: '${w}' appears twice`);
    seen.add(w);
  }
  return words as string[];
}

/** [textLen, textDim] sinusoidal positions (float64). */
export function textPositions(textLen: number, textDim: number): Float64Array {
  const pe = new Float64Array(textLen * textDim);
  for (let i = 0; i < textLen; i++) {
    for (let j = 0; j < textDim; j++) {
      const k = j >> 1;
      const angle = i / Math.pow(10000, (2 * k) / textDim);
      pe[i * textDim + j] = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return pe;
}

/** The tables a word's row adds for the words beside it. */
export interface NeighbourTables {
  previous: WeightTensor;
  next: WeightTensor;
}

export class BuiltinPromptEncoder implements PromptEncoder {
  readonly kind = 'builtin' as const;
  private readonly ids: Map<string, number>;
  private readonly positions: Float64Array;

  constructor(
    readonly vocabulary: readonly string[],
    readonly textLen: number,
    readonly textDim: number,
    private readonly table: WeightTensor,
    private readonly neighbours?: NeighbourTables,
  ) {
    const check = (key: string, t: WeightTensor): void => {
      if (t.shape.length !== 2 || t.shape[0] !== vocabulary.length || t.shape[1] !== textDim) {
        throw new SinkstreamError(
          'ERR_MODEL_SHAPE',
          `${key} has shape ${formatShape(t.shape)}, expected [${vocabulary.length}, ${textDim}] (vocabulary size ${vocabulary.length}, model.arch.textDim ${textDim})`,
        );
      }
    };
    check(TEXT_EMBEDDING_KEY, table);
    if (neighbours) {
      check(TEXT_NEIGHBOUR_KEYS[0], neighbours.previous);
      check(TEXT_NEIGHBOUR_KEYS[1], neighbours.next);
    }
    this.ids = new Map(vocabulary.map((w, i) => [w, i]));
    this.positions = textPositions(textLen, textDim);
  }

  static fromWeights(vocabulary: readonly string[], textLen: number, textDim: number, weights: ModelWeights, seed: number): BuiltinPromptEncoder {
    const table = weights.get(TEXT_EMBEDDING_KEY) ?? syntheticTextTable(vocabulary.length, textDim, seed);
    const [previous, next] = TEXT_NEIGHBOUR_KEYS.map((key) => weights.get(key));
    if ((previous === undefined) !== (next === undefined)) {
      const [has, lacks] = previous === undefined ? TEXT_NEIGHBOUR_KEYS.slice().reverse() : TEXT_NEIGHBOUR_KEYS;
      throw new SinkstreamError('ERR_MODEL_SHAPE', `the checkpoint has ${has} but not ${lacks}: the text encoder's neighbour tables come as a pair`);
    }
    return new BuiltinPromptEncoder(vocabulary, textLen, textDim, table, previous && next ? { previous, next } : undefined);
  }

  /** Token ids of a prompt (ERR_PROMPT for an unknown word or a prompt longer than textLen). */
  tokenize(prompt: string): number[] {
    const words = splitWords(prompt);
    const listing = (): string => `the vocabulary is: ${this.vocabulary.join(', ')}`;
    if (words.length === 0) throw new SinkstreamError('ERR_PROMPT', `prompt '${prompt}' has no words; ${listing()}`);
    if (words.length > this.textLen) {
      throw new SinkstreamError('ERR_PROMPT', `prompt '${prompt}' has ${words.length} words, the model reads at most ${this.textLen} (model.arch.textLen)`);
    }
    return words.map((w) => {
      const id = this.ids.get(w);
      if (id === undefined) throw new SinkstreamError('ERR_PROMPT', `prompt '${prompt}': '${w}' is not in the vocabulary; ${listing()}`);
      return id;
    });
  }

  encode(prompt: string): Float32Array {
    const tokens = this.tokenize(prompt);
    const d = this.textDim;
    const out = new Float32Array(this.textLen * d);
    const table = this.table.data;
    const previous = this.neighbours?.previous.data;
    const next = this.neighbours?.next.data;
    for (let i = 0; i < tokens.length; i++) {
      const row = tokens[i] * d;
      const before = previous && i > 0 ? tokens[i - 1] * d : -1;
      const after = next && i + 1 < tokens.length ? tokens[i + 1] * d : -1;
      for (let j = 0; j < d; j++) {
        let v = table[row + j] + this.positions[i * d + j];
        if (before >= 0) v += previous![before + j];
        if (after >= 0) v += next![after + j];
        out[i * d + j] = v;
      }
    }
    return out;
  }
}
