/**
 * The Wan2.1 VAE decoder on ONNX Runtime (CPU or WebGPU), streaming: the causal convolutions'
 * caches are carried from one decode() to the next, so decoding a stream block by block gives the
 * frames of decoding it whole (vae.py decodes latent frame by latent frame with the same caches).
 * A stream's first latent frame gives 1 video frame, every later one 4.
 *
 * Two sessions (graph.ts): `first` for a stream's first latent frame, `block` for
 * the rest, run on at most `framesPerRun` latent frames at a time (the activations of one latent
 * frame at 832x480 are already about a gigabyte in float32). On WebGPU with `resident`, the caches
 * stay on the GPU between runs (session outputs kept as 'gpu-buffer' and fed back); only the frames
 * come back to the host.
 */
import type * as ort from 'onnxruntime-node';
import { Tensor } from 'onnxruntime-node';
import { SinkstreamError } from '../../errors.js';
import type { ModelWeights } from '../../model/weights.js';
import { createSession, type OwnedSession, type Provider } from '../../engine/ort/sessions.js';
import type { FloatType } from '../../onnx/layers.js';
import { buildWanVaeGraph, WAN_VAE_IO, wanVaeCacheDims } from './graph.js';
import type { Decoder } from '../decoder.js';
import { graphPrecision, type DecoderBackend } from '../backend.js';
import { spatialScale, temporalScale, WAN21_LATENT_MEAN, WAN21_LATENT_STD, WAN21_VAE_ARCH, type WanVaeArch } from './arch.js';
import { loadWanVaeWeights, syntheticWanVaeWeights } from './weights.js';

export interface WanVaeDecoderOptions {
  /** A checkpoint (.safetensors / .pth) or 'synthetic'. */
  weights: string;
  syntheticSeed?: number;
  /** Synthetic weights only: the architecture (default: the published Wan2.1 VAE). */
  arch?: WanVaeArch;
  /** The latent the decoder is given: [latentChannels, F, latentHeight, latentWidth]. */
  latentChannels: number;
  latentHeight: number;
  latentWidth: number;
  provider: Provider;
  /** Compute type of weights, activations and caches (RMS_norm statistics are float32 in both). */
  dtype: FloatType;
  /** CPU intra-op threads, 0 = all cores. */
  threads?: number;
  /** Latent frames the block graph decodes per run (default 1: the least memory). */
  framesPerRun?: number;
  /** WebGPU: keep the caches on the GPU between runs (default true). */
  resident?: boolean;
}

function disposeGpu(tensors: Iterable<ort.Tensor>): void {
  for (const t of tensors) if (t.location === 'gpu-buffer') t.dispose();
}

export class WanVaeDecoder implements Decoder {
  readonly kind = 'wan-vae' as const;
  readonly framesForFirstLatentFrame = 1;
  readonly framesPerLatentFrame: number;
  readonly width: number;
  readonly height: number;
  private caches: Map<string, ort.Tensor> | null = null;
  private closed = false;

  private constructor(
    readonly arch: WanVaeArch,
    private readonly options: WanVaeDecoderOptions,
    readonly dtype: FloatType,
    private readonly first: OwnedSession,
    private readonly block: OwnedSession,
    private readonly cacheKeys: string[],
  ) {
    const s = spatialScale(arch);
    this.width = options.latentWidth * s;
    this.height = options.latentHeight * s;
    this.framesPerLatentFrame = temporalScale(arch);
  }

  get backend(): DecoderBackend {
    return { runtime: this.options.provider, precision: graphPrecision(this.dtype) };
  }

  static async open(options: WanVaeDecoderOptions): Promise<WanVaeDecoder> {
    let arch: WanVaeArch;
    let weights: ModelWeights;
    if (options.weights === 'synthetic') {
      arch = options.arch ?? WAN21_VAE_ARCH;
      weights = syntheticWanVaeWeights(arch, options.syntheticSeed ?? 0);
    } else {
      ({ arch, weights } = await loadWanVaeWeights(options.weights));
    }
    return WanVaeDecoder.fromWeights(arch, weights, options);
  }

  static async fromWeights(arch: WanVaeArch, weights: ModelWeights, options: WanVaeDecoderOptions): Promise<WanVaeDecoder> {
    if (options.latentChannels !== arch.zDim) {
      throw new SinkstreamError(
        'ERR_CONFIG_INVALID',
        `decoder.kind 'wan-vae': the VAE decodes ${arch.zDim} latent channels, model.arch.latentChannels is ${options.latentChannels}`,
      );
    }
    const framesPerRun = options.framesPerRun ?? 1;
    if (!Number.isInteger(framesPerRun) || framesPerRun < 1) throw new RangeError(`framesPerRun ${framesPerRun} is not a positive integer`);
    const dtype = options.dtype;
    const resident = options.provider === 'webgpu' && (options.resident ?? true);
    const latentStats = arch.zDim === WAN21_LATENT_MEAN.length ? { mean: WAN21_LATENT_MEAN, std: WAN21_LATENT_STD } : null;
    const cacheKeys = wanVaeCacheDims(arch, options.latentHeight, options.latentWidth).map((c) => c.key);
    const outputs = [WAN_VAE_IO.frames, ...cacheKeys.map(WAN_VAE_IO.newCache)];
    const settings = {
      provider: options.provider,
      threads: options.threads ?? 0,
      gpuOutputs: (name: string) => resident && name !== WAN_VAE_IO.frames,
    };
    const graph = (part: 'first' | 'block') =>
      buildWanVaeGraph(weights, { arch, latentHeight: options.latentHeight, latentWidth: options.latentWidth, dtype, part, latentStats });
    const first = await createSession(graph('first'), settings, outputs);
    let block: OwnedSession;
    try {
      block = await createSession(graph('block'), settings, outputs);
    } catch (e) {
      await first.release();
      throw e;
    }
    return new WanVaeDecoder(arch, { ...options, framesPerRun }, dtype, first, block, cacheKeys);
  }

  /** True once a stream is under way (its caches are held). */
  get streaming(): boolean {
    return this.caches !== null;
  }

  /**
   * The next block of the stream as float RGB: latent [C, F, h, w] -> [frames, 3, H, W] in about
   * [-1, 1] (not clamped), frames = F * 4, or 1 + (F - 1) * 4 for a stream's first block.
   */
  async decodeFloat(latent: Float32Array): Promise<{ data: Float32Array; frames: number }> {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'Wan VAE decoder: decode() after close()');
    const { latentChannels: C, latentHeight: h, latentWidth: w } = this.options;
    const plane = h * w;
    const F = latent.length / (C * plane);
    if (!Number.isInteger(F) || F < 1) throw new RangeError(`latent of ${latent.length} values is not [${C}, F, ${h}, ${w}]`);
    const parts: Float32Array[] = [];
    let start = 0;
    if (this.caches === null) {
      parts.push(await this.run(this.first, latentFrames(latent, C, F, plane, 0, 1), 1));
      start = 1;
    }
    const per = this.options.framesPerRun ?? 1;
    for (let f = start; f < F; f += per) {
      const n = Math.min(per, F - f);
      parts.push(await this.run(this.block, latentFrames(latent, C, F, plane, f, n), n));
    }
    const total = parts.reduce((s, p) => s + p.length, 0);
    const data = new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    return { data, frames: total / (3 * this.width * this.height) };
  }

  async decode(latent: Float32Array): Promise<Uint8Array[]> {
    const { data, frames } = await this.decodeFloat(latent);
    return framesToRgb24(data, frames, this.height, this.width);
  }

  private async run(owned: OwnedSession, latent: Float32Array, frames: number): Promise<Float32Array> {
    const { latentChannels: C, latentHeight: h, latentWidth: w } = this.options;
    const feeds: Record<string, ort.Tensor> = { [WAN_VAE_IO.latent]: new Tensor('float32', latent, [1, C, frames, h, w]) };
    if (this.caches) for (const key of this.cacheKeys) feeds[WAN_VAE_IO.cache(key)] = this.caches.get(key)!;
    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      out = await owned.session.run(feeds);
    } catch (e) {
      throw new SinkstreamError('ERR_ENGINE', `Wan VAE decoder: ${(e as Error).message}`, { cause: e });
    }
    const old = this.caches;
    this.caches = new Map(this.cacheKeys.map((key) => [key, out[WAN_VAE_IO.newCache(key)] as ort.Tensor]));
    if (old) disposeGpu(old.values());
    const framesTensor = out[WAN_VAE_IO.frames] as ort.Tensor;
    return framesTensor.data as Float32Array;
  }

  async reset(): Promise<void> {
    if (this.caches) disposeGpu(this.caches.values());
    this.caches = null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reset();
    await this.first.release();
    await this.block.release();
  }
}

/** Latent frames [from, from + n) of [C, F, h, w] as [C, n, h, w]. */
function latentFrames(latent: Float32Array, C: number, F: number, plane: number, from: number, n: number): Float32Array {
  if (from === 0 && n === F) return latent;
  const out = new Float32Array(C * n * plane);
  for (let c = 0; c < C; c++) out.set(latent.subarray((c * F + from) * plane, (c * F + from + n) * plane), c * n * plane);
  return out;
}

/** [F, 3, H, W] RGB in [-1, 1] -> F RGB24 frames (clamped, rounded). */
export function framesToRgb24(data: Float32Array, frames: number, height: number, width: number): Uint8Array[] {
  const plane = height * width;
  const out: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    const rgb = new Uint8Array(plane * 3);
    for (let ch = 0; ch < 3; ch++) {
      const src = (f * 3 + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const v = Math.floor((data[src + p] + 1) * 127.5 + 0.5);
        rgb[p * 3 + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
    out.push(rgb);
  }
  return out;
}
