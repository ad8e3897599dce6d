/**
 * Reads a SentencePiece model file (`spiece.model`: a serialized `sentencepiece.ModelProto`,
 * protobuf proto2) with the fields a unigram encoder needs. The schema below is the subset of
 * sentencepiece_model.proto those fields come from (same field numbers and defaults).
 */
import { readFile } from 'node:fs/promises';
import protobuf from 'protobufjs';
import { SinkstreamError } from '../errors.js';

const SCHEMA = `
syntax = "proto2";
package sentencepiece;
message TrainerSpec {
  enum ModelType { UNIGRAM = 1; BPE = 2; WORD = 3; CHAR = 4; }
  optional ModelType model_type = 3 [default = UNIGRAM];
  optional bool treat_whitespace_as_suffix = 24 [default = false];
  optional bool byte_fallback = 35 [default = false];
  optional int32 unk_id = 40 [default = 0];
  optional int32 bos_id = 41 [default = 1];
  optional int32 eos_id = 42 [default = 2];
  optional int32 pad_id = 43 [default = -1];
}
message NormalizerSpec {
  optional string name = 1;
  optional bytes precompiled_charsmap = 2;
  optional bool add_dummy_prefix = 3 [default = true];
  optional bool remove_extra_whitespaces = 4 [default = true];
  optional bool escape_whitespaces = 5 [default = true];
}
message ModelProto {
  message SentencePiece {
    enum Type { NORMAL = 1; UNKNOWN = 2; CONTROL = 3; USER_DEFINED = 4; BYTE = 6; UNUSED = 5; }
    optional string piece = 1;
    optional float score = 2;
    optional Type type = 3 [default = NORMAL];
  }
  repeated SentencePiece pieces = 1;
  optional TrainerSpec trainer_spec = 2;
  optional NormalizerSpec normalizer_spec = 3;
}
`;

export type PieceType = 'normal' | 'unknown' | 'control' | 'user-defined' | 'byte' | 'unused';

const PIECE_TYPES: Record<number, PieceType> = { 1: 'normal', 2: 'unknown', 3: 'control', 4: 'user-defined', 5: 'unused', 6: 'byte' };

export interface SentencePieceModel {
  pieces: { piece: string; score: number; type: PieceType }[];
  modelType: 'unigram' | 'bpe' | 'word' | 'char';
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  unkId: number;
  eosId: number;
  padId: number;
  normalizer: {
    name: string;
    /** Empty when the model normalizes nothing (identity). */
    charsmap: Uint8Array;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
}

let modelType: protobuf.Type | undefined;

function modelProtoType(): protobuf.Type {
  modelType ??= protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('sentencepiece.ModelProto');
  return modelType;
}

const MODEL_TYPES = ['unigram', 'bpe', 'word', 'char'] as const;

/** Decodes a ModelProto; `where` names the file in errors. */
export function parseSentencePieceModel(bytes: Uint8Array, where: string): SentencePieceModel {
  const type = modelProtoType();
  let decoded: Record<string, unknown>;
  try {
    decoded = type.toObject(type.decode(bytes), { defaults: true, enums: Number, longs: Number }) as Record<string, unknown>;
  } catch (e) {
    throw new SinkstreamError('ERR_MODEL_FILE', `${where}: not a SentencePiece model (${(e as Error).message})`, { cause: e });
  }
  const raw = decoded as {
    pieces: { piece: string; score: number; type: number }[];
    trainer_spec?: Record<string, number | boolean>;
    normalizer_spec?: { name: string; precompiled_charsmap?: Uint8Array; add_dummy_prefix: boolean; remove_extra_whitespaces: boolean; escape_whitespaces: boolean };
  };
  if (!raw.pieces?.length || !raw.trainer_spec || !raw.normalizer_spec) {
    throw new SinkstreamError('ERR_MODEL_FILE', `${where}: not a SentencePiece model (no pieces, trainer or normalizer spec)`);
  }
  const trainer = raw.trainer_spec;
  const spec = raw.normalizer_spec;
  return {
    pieces: raw.pieces.map((p, i) => {
      const pieceType = PIECE_TYPES[p.type];
      if (!pieceType || !p.piece) throw new SinkstreamError('ERR_MODEL_FILE', `${where}: piece ${i} has type ${p.type} or is empty`);
      return { piece: p.piece, score: p.score, type: pieceType };
    }),
    modelType: MODEL_TYPES[(trainer.model_type as number) - 1] ?? 'unigram',
    byteFallback: Boolean(trainer.byte_fallback),
    treatWhitespaceAsSuffix: Boolean(trainer.treat_whitespace_as_suffix),
    unkId: trainer.unk_id as number,
    eosId: trainer.eos_id as number,
    padId: trainer.pad_id as number,
    normalizer: {
      name: spec.name ?? '',
      charsmap: spec.precompiled_charsmap ? Uint8Array.from(spec.precompiled_charsmap) : new Uint8Array(0),
      addDummyPrefix: spec.add_dummy_prefix,
      removeExtraWhitespaces: spec.remove_extra_whitespaces,
      escapeWhitespaces: spec.escape_whitespaces,
    },
  };
}

export async function readSentencePieceModel(path: string): Promise<SentencePieceModel> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new SinkstreamError('ERR_MODEL_FILE', `text.tokenizer: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  return parseSentencePieceModel(bytes, path);
}
