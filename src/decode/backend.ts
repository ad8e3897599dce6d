/** What really runs a decoder: reported by `bench --json` and `render --json` next to the engine. */

/** Where a decoder runs: the CUDA addon, an ONNX Runtime provider, or plain TypeScript on the host. */
export interface DecoderBackend {
  runtime: 'native' | 'webgpu' | 'cpu';
  /** Storage / compute type of the decode: 'fp32', 'fp16' or 'bf16'. */
  precision: 'fp32' | 'fp16' | 'bf16';
  /** The GPU of a native decoder (absent otherwise). */
  device?: number;
}

/** The native decoders' precision codes (addon-types.ts: 0 bf16, 1 fp32, 2 fp16) by name. */
export function nativeDecoderPrecision(code: 0 | 1 | 2): DecoderBackend['precision'] {
  return code === 0 ? 'bf16' : code === 2 ? 'fp16' : 'fp32';
}

/** An ONNX Runtime graph's float type by name. */
export function graphPrecision(dtype: 'float32' | 'float16'): DecoderBackend['precision'] {
  return dtype === 'float16' ? 'fp16' : 'fp32';
}

/** One line: `native cuda:0 fp16`, `webgpu fp16`, `cpu fp32`. */
export function describeDecoderBackend(b: DecoderBackend): string {
  return `${b.runtime}${b.device === undefined ? '' : ` cuda:${b.device}`} ${b.precision}`;
}
