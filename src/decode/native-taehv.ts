/**
 * `decoder.kind: taehv` on the native CUDA addon (native/src/taehv-decoder.h): cuDNN convolutions on the
 * GPU, the MemBlocks' memory kept there from block to block. A decode runs on libuv's thread pool and on
 * the decoder's own CUDA stream, so the event loop goes on meanwhile and the GPU work can overlap the
 * transformer's next forward. Weights come from the same loader as the ONNX path (a checkpoint or the
 * seeded synthetic ones), handed over once in float32 and converted on the GPU.
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { loadNativeAddon } from '../engine/native/addon-loader.js';
import type { NativeAddon, NativeTaehvHandle, NativeTaehvInfo, NativeTaehvPrecision } from '../engine/native/addon-types.js';
import type { ModelWeights } from '../model/weights.js';
import type { Decoder } from './decoder.js';
import { nativeDecoderPrecision, type DecoderBackend } from './backend.js';
import { NativeDecoderCalls, NativeStreamingDecoder } from './native-decoder.js';
import { FRAMES_PER_LATENT_FRAME, FRAMES_TO_TRIM, type TaehvShape } from './taehv/architecture.js';
import { loadTaehvWeights } from './taehv/weights.js';

export interface NativeTaehvOptions {
  shape: TaehvShape;
  /** Checkpoint key (`decoder.<layer>...`) -> tensor in PyTorch's layout. */
  weights: ModelWeights;
  device: number;
  /** 0 = bf16, 1 = fp32, 2 = fp16; convolutions accumulate in fp32. */
  precision: NativeTaehvPrecision;
  /** > 0: choose the convolution algorithms for blocks of this many latent frames and decode one block of zeros at open. */
  warmupFrames: number;
  /** The addon (tests inject one); default: loadNativeAddon(). */
  addon?: NativeAddon;
}

/** decoder.runtime 'native', or 'auto' under the native engine: the decoder runs on the CUDA addon. */
export function taehvRunsNative(config: Pick<Config, 'decoder' | 'engine'>): boolean {
  const { runtime } = config.decoder;
  return runtime === 'native' || (runtime === 'auto' && config.engine.name === 'native');
}

/**
 * decoder.dtype 'float16' selects IEEE fp16 (TAEHV's own inference type upstream; on an H200 as fast as bf16 within
 * run-to-run noise and 2 instead of 11 levels of 255 from fp32, native/NOTES.md); 'float32' fp32.
 */
export function nativeTaehvPrecision(dtype: Config['decoder']['dtype']): NativeTaehvPrecision {
  return dtype === 'float16' ? 2 : 1;
}

export class NativeTaehvDecoder extends NativeStreamingDecoder<NativeTaehvHandle, NativeTaehvInfo> implements Decoder {
  readonly kind = 'taehv' as const;
  readonly framesPerLatentFrame = FRAMES_PER_LATENT_FRAME;
  readonly framesForFirstLatentFrame = FRAMES_PER_LATENT_FRAME - FRAMES_TO_TRIM;

  private constructor(native: NativeDecoderCalls<NativeTaehvHandle, NativeTaehvInfo>, backend: DecoderBackend) {
    super(native, backend);
  }

  static async open(options: NativeTaehvOptions): Promise<NativeTaehvDecoder> {
    const addon = options.addon ?? loadNativeAddon().addon;
    const { shape } = options;
    const dims = { latentChannels: shape.latentChannels, latentHeight: shape.latentHeight, latentWidth: shape.latentWidth, channels: shape.channels };
    const native = await NativeDecoderCalls.open(
      'native TAEHV decoder',
      {
        create: () => addon.createTaehv(dims, options.device, options.precision),
        setWeight: (h, key, data) => addon.taehvSetWeight(h, key, data),
        finalize: (h, frames) => addon.taehvFinalize(h, frames),
        decode: (h, latent, frames, out) => addon.taehvDecode(h, latent, frames, out),
        reset: (h) => addon.taehvReset(h),
        info: (h) => addon.taehvInfo(h),
        destroy: (h) => addon.taehvDestroy(h),
      },
      [...options.weights].map(([key, tensor]) => [key, tensor.data] as const),
      options.warmupFrames,
      { ...shape, framesPerLatentFrame: FRAMES_PER_LATENT_FRAME },
    );
    return new NativeTaehvDecoder(native, { runtime: 'native', precision: nativeDecoderPrecision(options.precision), device: options.device });
  }

  /** The configured decoder on the GPU of engine.device, warmed up for blocks of generation.blockFrames (default 3). */
  static async fromConfig(
    config: Pick<Config, 'model' | 'decoder' | 'engine'> & Partial<Pick<Config, 'generation'>>,
    addon?: NativeAddon,
  ): Promise<NativeTaehvDecoder> {
    const shape: TaehvShape = {
      latentChannels: config.model.arch.latentChannels,
      channels: config.decoder.taehv.channels,
      latentHeight: config.model.latentHeight,
      latentWidth: config.model.latentWidth,
    };
    const weights = await loadTaehvWeights(config.decoder.weights, shape, config.decoder.syntheticSeed);
    return NativeTaehvDecoder.open({
      shape,
      weights,
      device: config.engine.devices?.[0] ?? config.engine.device,
      precision: nativeTaehvPrecision(config.decoder.dtype),
      warmupFrames: config.generation?.blockFrames ?? 3,
      addon,
    });
  }
}
