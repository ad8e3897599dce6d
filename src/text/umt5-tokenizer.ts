/**
 * The umT5 tokenizer as Wan2.1 calls it (HuggingFace `google/umt5-xxl`, add_special_tokens=True,
 * truncation to text_len): the prompt is cleaned (prompt-clean.ts), the model's special pieces typed
 * literally (`</s>`, `<pad>`, `<unk>`) stand for their ids as HuggingFace's added tokens do, the
 * text between them goes through the SentencePiece unigram encoder, at most textLen - 1 pieces are
 * kept and the end-of-sequence id is appended. The encoder reads exactly these ids (no padding: the
 * rows past them are zero in Wan's context).
 *
 * Byte fallback is off by default although umT5's SentencePiece model has it on: Wan loads the
 * HuggingFace fast tokenizer, whose converter for T5 models does not carry SentencePiece's byte
 * fallback over, so a character outside the vocabulary (an emoji, a rare CJK character) reaches the
 * encoder as <unk>, one per run, which is what the Wan models were trained with.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { SinkstreamError } from '../errors.js';
import { cleanPrompt } from './prompt-clean.js';
import { readSentencePieceModel } from './sentencepiece-model.js';
import { SentencePieceTokenizer } from './sentencepiece.js';

export class Umt5Tokenizer {
  private readonly specials: Map<string, number>;
  private readonly specialPattern: RegExp | null;
  readonly eosId: number;

  constructor(readonly pieces: SentencePieceTokenizer, where: string) {
    const eos = pieces.model.eosId;
    if (eos < 0 || pieces.model.pieces[eos]?.type !== 'control') {
      throw new SinkstreamError('ERR_MODEL_FILE', `${where}: the model has no end-of-sequence piece (eos_id ${eos}); a T5 SentencePiece model has </s>`);
    }
    this.eosId = eos;
    this.specials = new Map();
    pieces.model.pieces.forEach((p, id) => {
      if (p.type === 'control' || p.type === 'unknown') this.specials.set(p.piece, id);
    });
    const escaped = [...this.specials.keys()].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.specialPattern = escaped.length ? new RegExp(`(${escaped.join('|')})`) : null;
  }

  /** `source`: a SentencePiece model file (spiece.model) or a folder holding one. */
  static async open(source: string, options: { byteFallback?: boolean } = {}): Promise<Umt5Tokenizer> {
    let file = source;
    try {
      if (statSync(source).isDirectory()) file = path.join(source, 'spiece.model');
    } catch (e) {
      throw new SinkstreamError('ERR_MODEL_FILE', `text.tokenizer: cannot read ${source} (${(e as NodeJS.ErrnoException).code ?? String(e)}); expected umT5's spiece.model or the folder holding it`, { cause: e });
    }
    const model = await readSentencePieceModel(file);
    return new Umt5Tokenizer(new SentencePieceTokenizer(model, file, { byteFallback: options.byteFallback ?? false }), file);
  }

  get vocabSize(): number {
    return this.pieces.size;
  }

  /** Token ids of a prompt, end-of-sequence included, at most `maxLength` of them. */
  encode(prompt: string, maxLength: number): number[] {
    const text = cleanPrompt(prompt);
    const ids: number[] = [];
    const parts = this.specialPattern ? text.split(this.specialPattern) : [text];
    parts.forEach((part, i) => {
      if (i % 2 === 1) ids.push(this.specials.get(part)!);
      else if (part !== '') ids.push(...this.pieces.encode(part));
    });
    const kept = ids.slice(0, Math.max(0, maxLength - 1));
    kept.push(this.eosId);
    return kept;
  }
}
