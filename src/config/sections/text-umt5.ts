/** The `text` keys of `encoder: umt5` (Wan2.1's umT5-XXL text encoder run by the runtime). */
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** The encoder's shape; defaults: umT5-XXL (Wan2.1). Smaller shapes are for tests and benchmarks. */
export const umt5ArchSection = z
  .object({
    dim: positiveInt.default(4096),
    layers: positiveInt.default(24),
    heads: positiveInt.default(64),
    ffnDim: positiveInt.default(10240),
    /** Rows of the token embedding (umT5: 256384, the tokenizer's 256000 pieces padded). */
    vocab: positiveInt.default(256384),
    /** Relative-position buckets (bidirectional: half per direction) and the distance the last one starts at. */
    buckets: positiveInt.default(32),
    maxDistance: positiveInt.default(128),
    eps: z.number().positive().default(1e-6),
  })
  .strict();

export const umt5TextKeys = {
  /** umt5: the encoder checkpoint (models_t5_umt5-xxl-enc-bf16.pth, or .safetensors), or `synthetic` (seeded, text.arch's shape). */
  weights: z.string().min(1).default('synthetic'),
  /** umt5: umT5's SentencePiece model (spiece.model) or the folder holding it (Wan's google/umt5-xxl). */
  tokenizer: z.string().min(1).optional(),
  /** umt5: honour the SentencePiece model's byte fallback (off: as the HuggingFace fast tokenizer Wan loads, an unknown run is one <unk>). */
  byteFallback: z.boolean().default(false),
  arch: umt5ArchSection.prefault({}),
  /** umt5 with synthetic weights: the seed. */
  syntheticSeed: z.number().int().nonnegative().default(0),
  /** umt5: where the encoder runs (ONNX Runtime's provider). */
  provider: z.enum(['cpu', 'webgpu']).default('cpu'),
  /** umt5 on cpu: intra-op threads; 0 = ONNX Runtime's default (every physical core). */
  threads: z.number().int().nonnegative().default(0),
  /** umt5: contexts kept in memory, most recently used first (a context is textLen x dim float32: 8 MiB for Wan). */
  cacheSize: z.number().int().nonnegative().default(16),
  /** umt5: a folder where contexts are also kept on disk, one file per prompt (reused across runs). */
  cacheDir: z.string().min(1).optional(),
};
