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
import { NativeCallQueue, nativeError } from '../engine/native/call-queue.js';
import type { NativeAddon, NativeTaehvPrecision, NativeWanVaeHandle, NativeWanVaeInfo } from '../engine/native/addon-types.js';
import type { ModelWeights } from '../model/weights.js';
import type { Decoder } from './decoder.js';
import { nativeDecoderPrecision, type DecoderBackend } from './backend.js';
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

const DECODER = 'native Wan VAE decoder';

export class NativeWanVaeDecoder implements Decoder {
  readonly kind = 'wan-vae' as const;
  readonly framesForFirstLatentFrame = 1;
  readonly framesPerLatentFrame: number;
  private readonly calls: NativeCallQueue<NativeWanVaeHandle>;

  private constructor(
    private readonly addon: NativeAddon,
    handle: NativeWanVaeHandle,
    readonly arch: WanVaeArch,
    private readonly latentHeight: number,
    private readonly latentWidth: number,
    readonly width: number,
    readonly height: number,
    readonly backend: DecoderBackend,
  ) {
    this.calls = new NativeCallQueue(handle, DECODER);
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
    let handle: NativeWanVaeHandle;
    try {
      handle = addon.createWanVae({ dim: arch.dim, zDim: arch.zDim, latentHeight: options.latentHeight, latentWidth: options.latentWidth }, options.device, options.precision);
    } catch (e) {
      throw new SinkstreamError('ERR_ENGINE_UNAVAILABLE', `native Wan VAE decoder: ${(e as Error).message}`, { cause: e });
    }
    try {
      for (const [key, tensor] of options.weights) addon.wanVaeSetWeight(handle, key, tensor.data);
      if (arch.zDim === WAN21_LATENT_MEAN.length) {
        addon.wanVaeSetWeight(handle, 'latent.mean', Float32Array.from(WAN21_LATENT_MEAN));
        addon.wanVaeSetWeight(handle, 'latent.std', Float32Array.from(WAN21_LATENT_STD));
      }
      await addon.wanVaeFinalize(handle, options.warmupFrames);
      const info = addon.wanVaeInfo(handle);
      return new NativeWanVaeDecoder(addon, handle, arch, options.latentHeight, options.latentWidth, info.width, info.height, {
        runtime: 'native',
        precision: nativeDecoderPrecision(options.precision),
        device: options.device,
      });
    } catch (e) {
      addon.wanVaeDestroy(handle);
      throw nativeError(DECODER, e);
    }
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

  /** Frames are views of one buffer per block. */
  decode(latent: Float32Array): Promise<Uint8Array[]> {
    const C = this.arch.zDim;
    const H = this.latentHeight;
    const W = this.latentWidth;
    const F = latent.length / (C * H * W);
    if (!Number.isInteger(F) || F < 1) {
      return Promise.reject(new SinkstreamError('ERR_ENGINE', `native Wan VAE decoder: latent of ${latent.length} values is not [${C}, F, ${H}, ${W}]`));
    }
    return this.calls.run(async (h) => {
      const bytes = this.width * this.height * 3;
      const out = new Uint8Array(this.framesPerLatentFrame * F * bytes);
      const n = await this.addon.wanVaeDecode(h, latent, F, out);
      return Array.from({ length: n }, (_, f) => out.subarray(f * bytes, (f + 1) * bytes));
    });
  }

  reset(): Promise<void> {
    return this.calls.run(async (h) => {
      await this.addon.wanVaeReset(h);
    });
  }

  /** Plans, planning time, the last decode's device time, device memory held, and what runs the convolutions. */
  info(): NativeWanVaeInfo {
    return this.addon.wanVaeInfo(this.calls.current());
  }

  /** Idempotent: waits for calls in flight, then frees the GPU memory. */
  close(): Promise<void> {
    return this.calls.close((h) => this.addon.wanVaeDestroy(h));
  }
}
