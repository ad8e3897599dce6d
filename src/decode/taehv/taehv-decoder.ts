/**
 * `decoder.kind: taehv` on ONNX Runtime, in the calling thread (createDecoder runs it in a worker,
 * src/decode/worker-decoder.ts): a stream's blocks in, RGB24 frames out, the MemBlocks' memory
 * carried from block to block until reset().
 */
import { SinkstreamError } from '../../errors.js';
import type { Provider } from '../../engine/ort/sessions.js';
import type { FloatType } from '../../onnx/layers.js';
import type { Decoder } from '../decoder.js';
import { graphPrecision, type DecoderBackend } from '../backend.js';
import { FRAMES_PER_LATENT_FRAME, FRAMES_TO_TRIM, type TaehvShape } from './architecture.js';
import { TaehvRuntime } from './runtime.js';
import { loadTaehvWeights } from './weights.js';

export interface TaehvDecoderOptions {
  shape: TaehvShape;
  /** A checkpoint (.pth / .safetensors) or 'synthetic'. */
  weights: string;
  syntheticSeed: number;
  provider: Provider;
  dtype: FloatType;
  threads: number;
  allowSpinning?: boolean;
  /** WebGPU: the memory stays on the GPU between blocks (default true). */
  resident?: boolean;
}

export class TaehvDecoder implements Decoder {
  readonly kind = 'taehv' as const;
  readonly framesPerLatentFrame = FRAMES_PER_LATENT_FRAME;
  readonly framesForFirstLatentFrame = FRAMES_PER_LATENT_FRAME - FRAMES_TO_TRIM;

  private constructor(private readonly runtime: TaehvRuntime) {}

  /** The provider and the graph's float type as the runtime built them (the CPU provider always runs fp32). */
  get backend(): DecoderBackend {
    return { runtime: this.runtime.provider, precision: graphPrecision(this.runtime.dtype) };
  }

  get width(): number {
    return this.runtime.width;
  }

  get height(): number {
    return this.runtime.height;
  }

  static async open(options: TaehvDecoderOptions): Promise<TaehvDecoder> {
    const weights = await loadTaehvWeights(options.weights, options.shape, options.syntheticSeed);
    const runtime = await TaehvRuntime.create({
      shape: options.shape,
      weights,
      provider: options.provider,
      dtype: options.dtype,
      threads: options.threads,
      allowSpinning: options.allowSpinning,
      resident: options.resident,
    });
    return new TaehvDecoder(runtime);
  }

  /** Frames are views of one buffer per block. */
  async decode(latent: Float32Array): Promise<Uint8Array[]> {
    const block = await this.runtime.decode(latent);
    if (!(block.data instanceof Uint8Array)) throw new SinkstreamError('ERR_ENGINE', 'TAEHV decoder: expected RGB24 frames');
    const bytes = this.width * this.height * 3;
    return Array.from({ length: block.frames }, (_, f) => block.data.subarray(f * bytes, (f + 1) * bytes) as Uint8Array);
  }

  async reset(): Promise<void> {
    this.runtime.reset();
  }

  close(): Promise<void> {
    return this.runtime.close();
  }
}
