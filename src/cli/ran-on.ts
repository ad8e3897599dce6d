/**
 * What a run really ran on, for `bench --json` and `render --json`: the engine's and the decoder's own
 * descriptions (never the config's keys: `engine.provider: webgpu` means nothing to the native engine).
 */
import type { DecoderBackend } from '../decode/decoder.js';
import type { EngineInfo } from '../engine/types.js';

export interface RanOn {
  /** `name/provider` as the engine describes itself, e.g. `ort/cpu` or `native/cuda:0 (NVIDIA H200), bf16, attention: cuDNN 9.14.0`. */
  engine: string;
  /** The forwards' precision as the engine built them (`bf16`, `fp16`, `fp32`); null when the engine does not say. */
  enginePrecision: string | null;
  /** What ran self-attention (cuDNN and its version, the engine's own kernel, ONNX Runtime's op); null when not said. */
  attention: string | null;
  /** The decoder's runtime (native / webgpu / cpu), precision and GPU; null without a decoder. */
  decoderRuntime: DecoderBackend | null;
}

export function ranOn(engine: EngineInfo, decoder: DecoderBackend | null): RanOn {
  return {
    engine: `${engine.name}/${engine.provider}`,
    enginePrecision: engine.precision ?? null,
    attention: engine.attention ?? null,
    decoderRuntime: decoder ? { ...decoder } : null,
  };
}
