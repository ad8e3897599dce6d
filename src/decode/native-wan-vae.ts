/**
 * `decoder.kind: wan-vae` on the native CUDA addon (native/src/wan-vae-decoder.h): cuDNN convolutions on the
 * GPU, the 32 causal convolutions' caches kept there from block to block, RGB24 frames back. A decode runs on
 * libuv's thread pool and on the decoder's own CUDA stream, so the event loop goes on meanwhile. Weights come from
 * the same loader as the ONNX path (a checkpoint or the seeded synthetic ones, canonical key names), handed over
 * once in float32 and laid out on the GPU; the published latent statistics go with them for a 16-channel latent.
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { loadNativeAddon } from '../engine/native/addon-loader.js';
import type { NativeAddon, NativeTaehvPrecision, NativeWanVaeHandle, NativeWanVaeInfo } from '../engine/native/addon-types.js';
import type { ModelWeights } from '../model/weights.js';
import type { Decoder } from './decoder.js';
import { nativeDecoderPrecision, type DecoderBackend } from './backend.js';
import { NativeDecoderCalls, NativeStreamingDecoder } from './native-decoder.js';
import { spatialScale, temporalScale, WAN21_LATENT_MEAN, WAN21_LATENT_STD, WAN21_VAE_ARCH, type WanVaeArch } from './wan-vae/arch.js';
import { loadWanVaeWeights, syntheticWanVaeWeights } from './wan-vae/weights.js';

export interface NativeWanVaeOptions {
  arch: WanVaeArch;
  /** Checkpoint key (`conv2.*`, `decoder.*`) -> tensor in PyTorch's layout. */
  weights: ModelWeights;
  latentHeight: number;
  latentWidth: number;
  device: number;
  /** 0 = bf16, 1 = fp32, 2 = fp16; convolutions accumulate in fp32, RMS_norm and softmax run in fp32. */
  precision: NativeTaehvPrecision;
  /** > 0: plan the convolutions on a stream's first block and a later block of this many latent frames at open. */
  warmupFrames: number;
  /** The addon (tests inject one); default: loadNativeAddon(). */
  addon?: NativeAddon;
}

/**
 * decoder.dtype 'float16' runs bf16 here: the Wan VAE's activations are not bounded (its residual stream has no
 * clamp, unlike TAEHV's), and bf16 keeps fp32's range; 'float32' runs fp32 without TF32.
 */
export function nativeWanVaePrecision(dtype: Config['decoder']['dtype']): NativeTaehvPrecision {
  return dtype === 'float16' ? 0 : 1;
}

export class NativeWanVaeDecoder extends NativeStreamingDecoder<NativeWanVaeHandle, NativeWanVaeInfo> implements Decoder {
  readonly kind = 'wan-vae' as const;
  readonly framesForFirstLatentFrame = 1;
  readonly framesPerLatentFrame: number;

  private constructor(
    native: NativeDecoderCalls<NativeWanVaeHandle, NativeWanVaeInfo>,
    readonly arch: WanVaeArch,
    backend: DecoderBackend,
  ) {
    super(native, backend);
    this.framesPerLatentFrame = temporalScale(arch);
  }

  static async open(options: NativeWanVaeOptions): Promise<NativeWanVaeDecoder> {
    const addon = options.addon ?? loadNativeAddon().addon;
    const { arch } = options;
    const s = spatialScale(arch);
    // the native decoder is written for the published layout; only the widths may differ
    if (s !== 8 || temporalScale(arch) !== 4 || arch.numResBlocks !== 2 || arch.dimMult.join() !== WAN21_VAE_ARCH.dimMult.join()) {
      throw new SinkstreamError('ERR_CONFIG_INVALID', 'native Wan VAE decoder: only the Wan2.1 layout (dim_mult [1, 2, 4, 4], 2 residual blocks) runs natively');
    }
    const weights: Array<readonly [string, Float32Array]> = [...options.weights].map(([key, tensor]) => [key, tensor.data] as const);
    if (arch.zDim === WAN21_LATENT_MEAN.length) {
      weights.push(['latent.mean', Float32Array.from(WAN21_LATENT_MEAN)], ['latent.std', Float32Array.from(WAN21_LATENT_STD)]);
    }
    const dims = { dim: arch.dim, zDim: arch.zDim, latentHeight: options.latentHeight, latentWidth: options.latentWidth };
    const native = await NativeDecoderCalls.open(
      'native Wan VAE decoder',
      {
        create: () => addon.createWanVae(dims, options.device, options.precision),
        setWeight: (h, key, data) => addon.wanVaeSetWeight(h, key, data),
        finalize: (h, frames) => addon.wanVaeFinalize(h, frames),
        decode: (h, latent, frames, out) => addon.wanVaeDecode(h, latent, frames, out),
        reset: (h) => addon.wanVaeReset(h),
        info: (h) => addon.wanVaeInfo(h),
        destroy: (h) => addon.wanVaeDestroy(h),
      },
      weights,
      options.warmupFrames,
      { latentChannels: arch.zDim, latentHeight: options.latentHeight, latentWidth: options.latentWidth, framesPerLatentFrame: temporalScale(arch) },
    );
    return new NativeWanVaeDecoder(native, arch, { runtime: 'native', precision: nativeDecoderPrecision(options.precision), device: options.device });
  }

  /** The configured decoder on the GPU of engine.device, warmed up for blocks of generation.blockFrames (default 3). */
  static async fromConfig(
    config: Pick<Config, 'model' | 'decoder' | 'engine'> & Partial<Pick<Config, 'generation'>>,
    addon?: NativeAddon,
  ): Promise<NativeWanVaeDecoder> {
    let arch: WanVaeArch;
    let weights: ModelWeights;
    if (config.decoder.weights === 'synthetic') {
      arch = WAN21_VAE_ARCH;
      weights = syntheticWanVaeWeights(arch, config.decoder.syntheticSeed);
    } else {
      ({ arch, weights } = await loadWanVaeWeights(config.decoder.weights));
    }
    const latentChannels = config.model.arch.latentChannels;
    if (latentChannels !== arch.zDim) {
      throw new SinkstreamError(
        'ERR_CONFIG_INVALID',
        `decoder.kind 'wan-vae': the VAE decodes ${arch.zDim} latent channels, model.arch.latentChannels is ${latentChannels}`,
      );
    }
    return NativeWanVaeDecoder.open({
      arch,
      weights,
      latentHeight: config.model.latentHeight,
      latentWidth: config.model.latentWidth,
      device: config.engine.devices?.[0] ?? config.engine.device,
      precision: nativeWanVaePrecision(config.decoder.dtype),
      warmupFrames: config.generation?.blockFrames ?? 3,
      addon,
    });
  }
}
