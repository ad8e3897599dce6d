/**
 * What the native decoders (TAEHV: native-taehv.ts, the Wan VAE: native-wan-vae.ts) share on the CUDA addon:
 * opening a handle (create, hand every weight over, finalize; the handle freed if any step fails), the calls
 * on it behind one queue (decode and reset in order, frames as views of one buffer per block, info, close:
 * NativeDecoderCalls), and the Decoder members built on them (NativeStreamingDecoder, their base class). They
 * differ in their addon functions, their shapes and their frame counts only.
 */
import { SinkstreamError } from '../errors.js';
import { NativeCallQueue, nativeError } from '../engine/native/call-queue.js';
import type { DecoderBackend } from './backend.js';

/** One native decoder's functions of the addon, bound to it. */
export interface NativeDecoderFunctions<H, I extends { width: number; height: number }> {
  create(): H;
  setWeight(handle: H, key: string, data: Float32Array): void;
  finalize(handle: H, warmupFrames: number): Promise<unknown>;
  /** Writes the frames into `out`; resolves to how many. */
  decode(handle: H, latent: Float32Array, frames: number, out: Uint8Array): Promise<number>;
  reset(handle: H): Promise<unknown>;
  info(handle: H): I;
  destroy(handle: H): void;
}

export interface NativeDecoderLayout {
  /** Latent [channels, F, height, width]. */
  latentChannels: number;
  latentHeight: number;
  latentWidth: number;
  /** Most video frames one latent frame decodes to (the output buffer's size). */
  framesPerLatentFrame: number;
}

export class NativeDecoderCalls<H, I extends { width: number; height: number }> {
  private readonly calls: NativeCallQueue<H>;

  private constructor(
    /** Names the decoder in messages, e.g. 'native TAEHV decoder'. */
    private readonly name: string,
    private readonly fns: NativeDecoderFunctions<H, I>,
    handle: H,
    private readonly layout: NativeDecoderLayout,
    readonly width: number,
    readonly height: number,
  ) {
    this.calls = new NativeCallQueue(handle, name);
  }

  /**
   * Creates the decoder (ERR_ENGINE_UNAVAILABLE when the addon cannot), hands it every weight and finalizes it
   * (planning on `warmupFrames` latent frames of zeros when > 0); the handle is freed if a step fails.
   */
  static async open<H, I extends { width: number; height: number }>(
    name: string,
    fns: NativeDecoderFunctions<H, I>,
    weights: Iterable<readonly [string, Float32Array]>,
    warmupFrames: number,
    layout: NativeDecoderLayout,
  ): Promise<NativeDecoderCalls<H, I>> {
    let handle: H;
    try {
      handle = fns.create();
    } catch (e) {
      throw new SinkstreamError('ERR_ENGINE_UNAVAILABLE', `${name}: ${(e as Error).message}`, { cause: e });
    }
    try {
      for (const [key, data] of weights) fns.setWeight(handle, key, data);
      await fns.finalize(handle, warmupFrames);
      const info = fns.info(handle);
      return new NativeDecoderCalls(name, fns, handle, layout, info.width, info.height);
    } catch (e) {
      fns.destroy(handle);
      throw nativeError(name, e);
    }
  }

  /** Frames are views of one buffer per block. */
  decode(latent: Float32Array): Promise<Uint8Array[]> {
    const { latentChannels: C, latentHeight: H, latentWidth: W, framesPerLatentFrame } = this.layout;
    const F = latent.length / (C * H * W);
    if (!Number.isInteger(F) || F < 1) {
      return Promise.reject(new SinkstreamError('ERR_ENGINE', `${this.name}: latent of ${latent.length} values is not [${C}, F, ${H}, ${W}]`));
    }
    return this.calls.run(async (h) => {
      const bytes = this.width * this.height * 3;
      const out = new Uint8Array(framesPerLatentFrame * F * bytes);
      const n = await this.fns.decode(h, latent, F, out);
      return Array.from({ length: n }, (_, f) => out.subarray(f * bytes, (f + 1) * bytes));
    });
  }

  reset(): Promise<void> {
    return this.calls.run(async (h) => {
      await this.fns.reset(h);
    });
  }

  info(): I {
    return this.fns.info(this.calls.current());
  }

  /** Idempotent: waits for calls in flight, then frees the GPU memory. */
  close(): Promise<void> {
    return this.calls.close((h) => this.fns.destroy(h));
  }
}

/** A native decoder's Decoder members that do not depend on its kind: size, decode, reset, info, close. */
export abstract class NativeStreamingDecoder<H, I extends { width: number; height: number }> {
  protected constructor(
    private readonly native: NativeDecoderCalls<H, I>,
    readonly backend: DecoderBackend,
  ) {}

  get width(): number {
    return this.native.width;
  }

  get height(): number {
    return this.native.height;
  }

  /** Frames are views of one buffer per block. */
  decode(latent: Float32Array): Promise<Uint8Array[]> {
    return this.native.decode(latent);
  }

  reset(): Promise<void> {
    return this.native.reset();
  }

  /** Plans, planning time, the last decode's device time (and what else the kind reports), what runs the convolutions. */
  info(): I {
    return this.native.info();
  }

  /** Idempotent: waits for calls in flight, then frees the GPU memory. */
  close(): Promise<void> {
    return this.native.close();
  }
}
