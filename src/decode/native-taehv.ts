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

function decoderError(e: unknown): SinkstreamError {
  if (e instanceof SinkstreamError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: string }).code === 'ERR_CLOSED' ? 'ERR_CLOSED' : 'ERR_ENGINE';
  return new SinkstreamError(code, `native TAEHV decoder: ${message}`, { cause: e });
}

export class NativeTaehvDecoder implements Decoder {
  readonly kind = 'taehv' as const;
  readonly framesPerLatentFrame = FRAMES_PER_LATENT_FRAME;
  readonly framesForFirstLatentFrame = FRAMES_PER_LATENT_FRAME - FRAMES_TO_TRIM;
  private handle: NativeTaehvHandle | null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly addon: NativeAddon,
    handle: NativeTaehvHandle,
    private readonly shape: TaehvShape,
    readonly width: number,
    readonly height: number,
    readonly backend: DecoderBackend,
  ) {
    this.handle = handle;
  }

  static async open(options: NativeTaehvOptions): Promise<NativeTaehvDecoder> {
    const addon = options.addon ?? loadNativeAddon().addon;
    const { shape } = options;
    let handle: NativeTaehvHandle;
    try {
      handle = addon.createTaehv(
        { latentChannels: shape.latentChannels, latentHeight: shape.latentHeight, latentWidth: shape.latentWidth, channels: shape.channels },
        options.device,
        options.precision,
      );
    } catch (e) {
      throw new SinkstreamError('ERR_ENGINE_UNAVAILABLE', `native TAEHV decoder: ${(e as Error).message}`, { cause: e });
    }
    try {
      for (const [key, tensor] of options.weights) addon.taehvSetWeight(handle, key, tensor.data);
      await addon.taehvFinalize(handle, options.warmupFrames);
      const info = addon.taehvInfo(handle);
      return new NativeTaehvDecoder(addon, handle, shape, info.width, info.height, {
        runtime: 'native',
        precision: nativeDecoderPrecision(options.precision),
        device: options.device,
      });
    } catch (e) {
      addon.taehvDestroy(handle);
      throw decoderError(e);
    }
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

  /** Runs `op` after every earlier call; rejects with ERR_CLOSED once close() was asked for. */
  private run<T>(op: (handle: NativeTaehvHandle) => Promise<T>): Promise<T> {
    if (this.closed || !this.handle) return Promise.reject(new SinkstreamError('ERR_CLOSED', 'native TAEHV decoder: used after close()'));
    const handle = this.handle;
    const next = this.chain.then(
      () => op(handle),
      () => op(handle),
    );
    this.chain = next.catch(() => undefined);
    return next.catch((e: unknown) => {
      throw decoderError(e);
    });
  }

  /** Frames are views of one buffer per block. */
  decode(latent: Float32Array): Promise<Uint8Array[]> {
    const { latentChannels: C, latentHeight: H, latentWidth: W } = this.shape;
    const F = latent.length / (C * H * W);
    if (!Number.isInteger(F) || F < 1) {
      return Promise.reject(new SinkstreamError('ERR_ENGINE', `native TAEHV decoder: latent of ${latent.length} values is not [${C}, F, ${H}, ${W}]`));
    }
    return this.run(async (h) => {
      const bytes = this.width * this.height * 3;
      const out = new Uint8Array(FRAMES_PER_LATENT_FRAME * F * bytes);
      const n = await this.addon.taehvDecode(h, latent, F, out);
      return Array.from({ length: n }, (_, f) => out.subarray(f * bytes, (f + 1) * bytes));
    });
  }

  reset(): Promise<void> {
    return this.run(async (h) => {
      await this.addon.taehvReset(h);
    });
  }

  /** Plans, planning time, the last decode's device time, and what runs the convolutions. */
  info(): NativeTaehvInfo {
    if (this.closed || !this.handle) throw new SinkstreamError('ERR_CLOSED', 'native TAEHV decoder: used after close()');
    return this.addon.taehvInfo(this.handle);
  }

  /** Idempotent: waits for calls in flight, then frees the GPU memory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    if (this.handle) this.addon.taehvDestroy(this.handle);
    this.handle = null;
  }
}
