/**
 * SentencePiece's unigram encoder, as its C++ library (0.1.9x) computes it, from a model file
 * (sentencepiece-model.ts):
 *
 * Normalization (normalizer.cc): the input's UTF-8 bytes are rewritten by the model's precompiled
 * character map (a double-array trie from byte prefixes to replacement strings, longest match
 * first; e.g. NFKC for `nmt_nfkc`), user-defined pieces pass through unchanged, leading, trailing
 * and repeated spaces are dropped, a space is put in front (add_dummy_prefix) and every space
 * becomes U+2581 `▁`.
 *
 * Segmentation (unigram_model.cc, EncodeOptimized): the best path by total piece score, scores and
 * sums in float32, the first candidate kept on ties; a position no one-character piece covers gets
 * an unknown node scored (lowest piece score - 10); user-defined pieces score (bytes * highest
 * score - 0.1) so they always win. Unknown runs become one unknown id, or with byte fallback the
 * UTF-8 bytes of the run as `<0xXX>` pieces.
 */
import { SinkstreamError } from '../errors.js';
import type { SentencePieceModel } from './sentencepiece-model.js';

const SPACE = 0x20;
const ESCAPED_SPACE = [0xe2, 0x96, 0x81]; // U+2581 in UTF-8
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function charLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >> 5 === 0x6) return 2;
  if (lead >> 4 === 0xe) return 3;
  if (lead >> 3 === 0x1e) return 4;
  return 1; // a stray continuation byte: one byte at a time, as SentencePiece does
}

function utf8Length(codePoint: number): number {
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
}

/** The precompiled character map: `<trie bytes: uint32 LE><darts-clone double array><NUL-separated replacements>`. */
class CharsMap {
  private readonly units: Uint32Array;
  private readonly replacements: Uint8Array;

  constructor(blob: Uint8Array, where: string) {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieBytes = blob.byteLength >= 4 ? view.getUint32(0, true) : -1;
    if (trieBytes < 0 || trieBytes % 4 !== 0 || 4 + trieBytes > blob.byteLength) {
      throw new SinkstreamError('ERR_MODEL_FILE', `${where}: the normalizer's precompiled character map is malformed`);
    }
    this.units = new Uint32Array(blob.slice(4, 4 + trieBytes).buffer);
    this.replacements = blob.subarray(4 + trieBytes);
  }

  /** Longest rule matching input[pos..]: [bytes consumed, replacement] or null. */
  longestMatch(input: Uint8Array, pos: number): [number, Uint8Array] | null {
    const units = this.units;
    const offset = (unit: number): number => ((unit >>> 10) << ((unit & (1 << 9)) >>> 6)) >>> 0;
    let node = offset(units[0]);
    let best: [number, number] | null = null;
    for (let i = pos; i < input.length; i++) {
      const byte = input[i];
      node = (node ^ byte) >>> 0;
      const unit = units[node];
      if (unit === undefined || (unit & 0x800000ff) >>> 0 !== byte) break;
      node = (node ^ offset(unit)) >>> 0;
      if ((unit >>> 8) & 1) best = [i + 1 - pos, units[node] & 0x7fffffff];
    }
    if (!best) return null;
    const start = best[1];
    let end = start;
    while (end < this.replacements.length && this.replacements[end] !== 0) end++;
    return [best[0], this.replacements.subarray(start, end)];
  }
}

export class SentencePieceNormalizer {
  private readonly charsMap: CharsMap | null;
  private readonly userDefined: Uint8Array[];

  constructor(
    private readonly spec: SentencePieceModel['normalizer'],
    userDefinedPieces: string[],
    where: string,
  ) {
    this.charsMap = spec.charsmap.length > 0 ? new CharsMap(spec.charsmap, where) : null;
    this.userDefined = userDefinedPieces.map((p) => utf8.encode(p));
  }

  /** One normalization step at input[pos]: [replacement, bytes consumed]. */
  private prefix(input: Uint8Array, pos: number): [Uint8Array, number] {
    let longestUser = 0;
    for (const symbol of this.userDefined) {
      if (symbol.length <= longestUser || pos + symbol.length > input.length) continue;
      let same = true;
      for (let k = 0; k < symbol.length && same; k++) same = input[pos + k] === symbol[k];
      if (same) longestUser = symbol.length;
    }
    if (longestUser > 0) return [input.subarray(pos, pos + longestUser), longestUser];
    const rule = this.charsMap?.longestMatch(input, pos);
    if (rule) return [rule[1], rule[0]];
    const n = Math.min(charLength(input[pos]), input.length - pos);
    return [input.subarray(pos, pos + n), n];
  }

  /** The normalized UTF-8 bytes of `text`. */
  normalize(text: string): Uint8Array {
    const input = utf8.encode(text);
    const { removeExtraWhitespaces, addDummyPrefix, escapeWhitespaces } = this.spec;
    let pos = 0;
    if (removeExtraWhitespaces) {
      while (pos < input.length) {
        const [sp, n] = this.prefix(input, pos);
        if (!(sp.length === 1 && sp[0] === SPACE)) break;
        pos += n;
      }
    }
    if (pos >= input.length) return new Uint8Array(0);
    const out: number[] = [];
    const space = (): void => {
      if (escapeWhitespaces) out.push(...ESCAPED_SPACE);
      else out.push(SPACE);
    };
    if (addDummyPrefix) space();
    let prevSpace = removeExtraWhitespaces;
    while (pos < input.length) {
      const [sp, n] = this.prefix(input, pos);
      let k = 0;
      if (prevSpace) while (k < sp.length && sp[k] === SPACE) k++;
      if (k < sp.length) {
        for (let j = k; j < sp.length; j++) {
          if (sp[j] === SPACE) space();
          else out.push(sp[j]);
        }
        prevSpace = sp[sp.length - 1] === SPACE;
      }
      pos += n;
    }
    if (removeExtraWhitespaces) {
      const tail = escapeWhitespaces ? ESCAPED_SPACE : [SPACE];
      while (out.length >= tail.length && tail.every((b, j) => out[out.length - tail.length + j] === b)) out.length -= tail.length;
    }
    return Uint8Array.from(out);
  }
}

export class SentencePieceTokenizer {
  readonly normalizer: SentencePieceNormalizer;
  readonly size: number;
  private readonly ids = new Map<string, number>();
  private readonly userDefinedIds = new Set<number>();
  private readonly scores: Float32Array;
  private readonly byteIds: Int32Array;
  private readonly maxPieceChars: number;
  private readonly minScore: number;
  private readonly maxScore: number;
  private readonly unkId: number;
  private readonly byteFallback: boolean;

  /** `byteFallback`: overrides the model's own flag (false: unknown runs become one unknown id). */
  constructor(readonly model: SentencePieceModel, where: string, options: { byteFallback?: boolean } = {}) {
    if (model.modelType !== 'unigram') throw new SinkstreamError('ERR_MODEL_FILE', `${where}: a ${model.modelType} SentencePiece model; only unigram models (T5, umT5) are supported`);
    if (model.treatWhitespaceAsSuffix) throw new SinkstreamError('ERR_MODEL_FILE', `${where}: treat_whitespace_as_suffix models are not supported`);
    const unk = model.pieces[model.unkId];
    if (!unk || unk.type !== 'unknown') throw new SinkstreamError('ERR_MODEL_FILE', `${where}: unk_id ${model.unkId} is not an unknown piece`);
    this.size = model.pieces.length;
    this.unkId = model.unkId;
    this.byteFallback = options.byteFallback ?? model.byteFallback;
    this.scores = new Float32Array(model.pieces.map((p) => p.score));
    this.byteIds = new Int32Array(256).fill(-1);
    let minScore = Infinity;
    let maxScore = -Infinity;
    let maxChars = 1;
    const userDefined: string[] = [];
    model.pieces.forEach((p, id) => {
      if (p.type === 'normal' || p.type === 'user-defined' || p.type === 'unused') {
        if (this.ids.has(p.piece)) throw new SinkstreamError('ERR_MODEL_FILE', `${where}: piece '${p.piece}' is defined twice`);
        this.ids.set(p.piece, id);
        maxChars = Math.max(maxChars, [...p.piece].length);
      }
      if (p.type === 'normal') {
        minScore = Math.min(minScore, p.score);
        maxScore = Math.max(maxScore, p.score);
      }
      if (p.type === 'user-defined') {
        userDefined.push(p.piece);
        this.userDefinedIds.add(id);
      }
      const byte = /^<0x([0-9A-F]{2})>$/.exec(p.piece);
      if (p.type === 'byte' && byte) this.byteIds[parseInt(byte[1], 16)] = id;
    });
    if (this.byteFallback && this.byteIds.some((id) => id < 0)) {
      throw new SinkstreamError('ERR_MODEL_FILE', `${where}: byte_fallback is on but the model lacks some of the 256 <0xXX> byte pieces`);
    }
    this.minScore = minScore;
    this.maxScore = maxScore;
    this.maxPieceChars = maxChars;
    this.normalizer = new SentencePieceNormalizer(model.normalizer, userDefined, where);
  }

  /** Piece ids of `text` (no special tokens added). */
  encode(text: string): number[] {
    const normalized = this.normalizer.normalize(text);
    if (normalized.length === 0) return [];
    const chars = Array.from(fromUtf8.decode(normalized));
    const n = chars.length;
    const bytesOf = chars.map((c) => utf8Length(c.codePointAt(0)!));
    const unkScore = Math.fround(this.minScore - 10);
    const bestScore = new Float64Array(n + 1);
    const startsAt = new Int32Array(n + 1).fill(-1);
    const bestId = new Int32Array(n + 1).fill(-1);
    const offer = (end: number, start: number, id: number, score: number): void => {
      const candidate = Math.fround(score + bestScore[start]);
      if (startsAt[end] === -1 || candidate > bestScore[end]) {
        bestScore[end] = candidate;
        startsAt[end] = start;
        bestId[end] = id;
      }
    };
    for (let start = 0; start < n; start++) {
      let piece = '';
      let bytes = 0;
      let hasSingle = false;
      for (let end = start + 1; end <= Math.min(n, start + this.maxPieceChars); end++) {
        piece += chars[end - 1];
        bytes += bytesOf[end - 1];
        const id = this.ids.get(piece);
        if (id === undefined || this.model.pieces[id].type === 'unused') continue;
        const score = this.userDefinedIds.has(id) ? Math.fround(bytes * this.maxScore - 0.1) : this.scores[id];
        offer(end, start, id, score);
        if (end === start + 1) hasSingle = true;
      }
      if (!hasSingle) offer(start + 1, start, this.unkId, unkScore);
    }
    const path: [number, number][] = []; // [start char, id]
    for (let end = n; end > 0; end = startsAt[end]) path.push([startsAt[end], bestId[end]]);
    path.reverse();
    const ids: number[] = [];
    let unkRun = '';
    const flushUnknown = (): void => {
      if (unkRun === '') return;
      if (this.byteFallback) for (const b of utf8.encode(unkRun)) ids.push(this.byteIds[b]);
      else ids.push(this.unkId);
      unkRun = '';
    };
    path.forEach(([start, id], i) => {
      if (id === this.unkId) {
        const end = i + 1 < path.length ? path[i + 1][0] : n;
        unkRun += chars.slice(start, end).join('');
        return;
      }
      flushUnknown();
      ids.push(id);
    });
    flushUnknown();
    return ids;
  }

  /** The id of a special piece (control / unknown) by its text, e.g. `</s>`. */
  specialId(piece: string): number | undefined {
    const id = this.model.pieces.findIndex((p) => (p.type === 'control' || p.type === 'unknown') && p.piece === piece);
    return id < 0 ? undefined : id;
  }
}
