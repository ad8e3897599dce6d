/**
 * The surface of the CUDA addon (native/src/addon.cc), as the TypeScript wrapper uses it.
 * Long operations return promises (they run on libuv's thread pool); the others are synchronous.
 */
import type { ModelDims } from '../../model/dims.js';

/** An opaque handle to one engine inside the addon. */
export type NativeHandle = { readonly __nativeHandle: unique symbol };
/** An opaque handle to one TAEHV decoder inside the addon. */
export type NativeTaehvHandle = { readonly __nativeTaehvHandle: unique symbol };

/** TAEHV decoder precision: 0 = bf16, 1 = fp32, 2 = fp16 (convolutions accumulate in fp32). */
export type NativeTaehvPrecision = 0 | 1 | 2;

export interface NativeTaehvDims {
  latentChannels: number;
  latentHeight: number;
  latentWidth: number;
  /** taew2_1: [256, 128, 64, 64] */
  channels: readonly [number, number, number, number];
}

export interface NativeTaehvInfo {
  width: number;
  height: number;
  /** Convolution geometries planned (algorithm chosen by timing) and the milliseconds that took. */
  plans: number;
  planMs: number;
  /** Device milliseconds of the last decode (latent upload to frames on the host). */
  lastMs: number;
  /** What runs the convolutions, e.g. "cuDNN 9.14.0 (libcudnn.so.9), bf16, ...". */
  provider: string;
}

/** An opaque handle to one Wan VAE decoder inside the addon. */
export type NativeWanVaeHandle = { readonly __nativeWanVaeHandle: unique symbol };

export interface NativeWanVaeDims {
  /** Base width (Wan2.1: 96; a multiple of 8). */
  dim: number;
  /** Latent channels (Wan2.1: 16). */
  zDim: number;
  latentHeight: number;
  latentWidth: number;
}

export interface NativeWanVaeInfo extends NativeTaehvInfo {
  /** Device memory the decoder holds: weights, the causal caches, scratch. */
  deviceBytes: number;
}

/** Sums over an engine's forwards (native/src/capi.h, ssn_forward_stats). */
export interface NativeForwardStats {
  forwards: number;
  /** Inside the addon's forward call, on its thread. */
  wallMs: number;
  /** Entry to the work enqueued (inputs copied, launches or one graph launch issued). */
  issueMs: number;
  /** On the GPU: events around the input copies .. the output copy. */
  gpuMs: number;
  /** Before each forward, since the engine's previous forward or cache update returned (the host's turn). */
  idleMs: number;
  graphLaunches: number;
  graphCaptures: number;
  /** 1 once a capture failed and the engine went back to direct launches. */
  graphFallback: number;
}

/** One stream's forward in NativeAddon.forwardBatch (forward's arguments; keepQueries 0 none, 1 sum, 2 max). */
export interface NativeBatchRequest {
  latent: Float32Array;
  timesteps: Float32Array;
  framePositions: Int32Array;
  keepBlockKv: boolean;
  keepQueries: number;
  flow: Float32Array;
}

/** Storage precision: 0 = bf16 with tensor-core products (fast path), 1 = fp32 throughout. */
export type NativePrecision = 0 | 1;

export interface NativeAddon {
  abiVersion(): number;
  deviceCount(): number;
  deviceName(device: number): string;
  /**
   * weightsKey names the weights' content ('' = not shared): engines of the same key, model, precision and
   * device hold one copy; weightsShared() tells whether a new engine got them complete from a live one.
   */
  createEngine(dims: ModelDims, device: number, precision: NativePrecision, weightsKey: string): NativeHandle;
  /** One engine over several GPUs: stage i runs the next layerCounts[i] layers on devices[i]. */
  createPipeline(dims: ModelDims, precision: NativePrecision, devices: Int32Array, layerCounts: Int32Array, weightsKey: string): NativeHandle;
  /** True when the engine's weights came complete from a live engine of the same weights key (give none). */
  weightsShared(handle: NativeHandle): boolean;
  /** What the bf16 path's attention runs on: cuDNN and its version, or why the engine's own kernel. */
  attentionBackend(): string;
  destroy(handle: NativeHandle): void;
  setWeight(handle: NativeHandle, key: string, data: Float32Array): void;
  finalize(handle: NativeHandle): void;
  setPrompt(handle: NativeHandle, context: Float32Array): Promise<number>;
  /** keepQueries: 0 none, 1 sum, 2 max. Resolves to the kept queries' id, or -1. */
  forward(
    handle: NativeHandle,
    latent: Float32Array,
    timesteps: Float32Array,
    framePositions: Int32Array,
    keepBlockKv: boolean,
    keepQueries: number,
    flowOut: Float32Array,
  ): Promise<number>;
  /**
   * Several engines' forwards as one (native/src/capi.h, ssn_forward_batch): the engines must be distinct single-GPU
   * engines of one weights key on one device. Resolves when done; queriesIds[i] = request i's kept queries' id or -1.
   */
  forwardBatch(handles: NativeHandle[], requests: NativeBatchRequest[], queriesIds: Int32Array): Promise<number>;
  updateCache(
    handle: NativeHandle,
    rows: number,
    terms: number,
    perLayer: boolean,
    sources: Int32Array,
    weights: Float32Array,
    positions: Float32Array,
  ): Promise<number>;
  /** reduce: 0 sum, 1 max; out [layers, cacheRows]. */
  scoreCache(handle: NativeHandle, ids: Int32Array, starts: Int32Array, ends: Int32Array, reduce: number, out: Float32Array): Promise<number>;
  releaseQueries(handle: NativeHandle, id: number): Promise<number>;
  resetCache(handle: NativeHandle): Promise<number>;
  cacheInfo(handle: NativeHandle): { rows: number; pending: number };
  readCache(handle: NativeHandle, keys: Float32Array, values: Float32Array, positions: Float32Array): Promise<number>;
  profile(handle: NativeHandle, on: boolean): void;
  /** Device ms per phase summed over the profiled forwards so far: [6] in PROFILE_PHASES' order. */
  profileRead(handle: NativeHandle): Float64Array;
  /** Sums over the forwards since the last reset (reset: zero them after reading). */
  forwardStats(handle: NativeHandle, reset: boolean): NativeForwardStats;
  /** CUDA graphs for forwards of a repeated shape: 0 off, 1 on (engines over several GPUs ignore it). */
  setCudaGraphs(handle: NativeHandle, mode: 0 | 1): void;
  /** Self-attention's precision: 0 exact, 1 FP8 through cuDNN's fused FP8 attention (throws where unavailable). */
  setAttentionPrecision(handle: NativeHandle, mode: 0 | 1): void;
  /**
   * Exact attention's kernel on the bf16 path: 0 auto (the own Hopper kernel on a Hopper GPU at head_dim 128, else
   * cuDNN), 1 cuDNN (else the own FlashAttention-2-style kernel), 2 the own Hopper kernel (throws where it cannot run).
   */
  setAttentionKernel(handle: NativeHandle, mode: 0 | 1 | 2): void;
  /** What exact self-attention runs on now: 0 the own FlashAttention-2-style kernel, 1 cuDNN, 2 the own Hopper kernel. */
  attentionKernel(handle: NativeHandle): 0 | 1 | 2;
  /**
   * The products that read a normalised row (q/k/v, cross q, the FFN's two): 0 in the storage type, 1 in FP8 (E4M3,
   * a scale per row of each operand; bf16 engines on Hopper or newer, throws elsewhere). Weights quantised once.
   */
  setProductPrecision(handle: NativeHandle, mode: 0 | 1): void;
  /** cuDNN attention plans: built by this engine (and the ms it took), and found built by another engine of the process. */
  attentionPlans(handle: NativeHandle): { built: number; ms: number; reused: number };
  /**
   * Whole blocks run from C with nothing between the calls (native/src/block-loop.h): per block, forwards from
   * `noise` at `sigmas`, the clean pass and a sink-window update that keeps the cache's row count. out [3 * blocks]:
   * per block its wall ms, its forwards' ms, its update's ms. Replaces the cached rows' content (reset after).
   */
  loopBlocks(
    handle: NativeHandle,
    noise: Float32Array,
    frames: number,
    sigmas: Float32Array,
    framePositions: Int32Array,
    tokensPerFrame: number,
    gridWidth: number,
    blocks: number,
    sinkRows: number,
    out: Float64Array,
  ): Promise<number>;

  /**
   * A block's denoising steps from C (native/src/denoise-steps.h): forwards from `x` (may be overwritten) at `sigmas`
   * with the generator's sampler between them (on the GPU, the latent kept there; on the host for a pipeline over
   * several GPUs), re-noising with `noises` ((steps - 1) latents) or Euler steps when
   * null; the last step's x0 into `x0Out`. `flowScratch`: the latent's size.
   */
  denoiseSteps(
    handle: NativeHandle,
    x: Float32Array,
    frames: number,
    framePositions: Int32Array,
    sigmas: Float64Array,
    noises: Float32Array | null,
    samplePrediction: boolean,
    sigmaFloor: number,
    flowScratch: Float32Array,
    x0Out: Float32Array,
  ): Promise<void>;

  /** A TAEHV decoder (native/src/taehv-decoder.h); throws when cuDNN cannot be loaded. */
  createTaehv(dims: NativeTaehvDims, device: number, precision: NativeTaehvPrecision): NativeTaehvHandle;
  taehvDestroy(handle: NativeTaehvHandle): void;
  /** One weight under its checkpoint key (decoder.<layer>...), PyTorch layout. */
  taehvSetWeight(handle: NativeTaehvHandle, key: string, data: Float32Array): void;
  /** Checks every weight was given; warmupFrames > 0 plans the convolutions and decodes a block of zeros. */
  taehvFinalize(handle: NativeTaehvHandle, warmupFrames: number): Promise<number>;
  /** latent [C, frames, H, W] -> RGB24 frames into out; resolves to the frames written (4F, or 4F - 3 first). */
  taehvDecode(handle: NativeTaehvHandle, latent: Float32Array, frames: number, out: Uint8Array): Promise<number>;
  taehvReset(handle: NativeTaehvHandle): Promise<number>;
  taehvInfo(handle: NativeTaehvHandle): NativeTaehvInfo;

  /** A Wan2.1 VAE decoder (native/src/wan-vae-decoder.h); precision as TAEHV's; throws when cuDNN cannot be loaded. */
  createWanVae(dims: NativeWanVaeDims, device: number, precision: NativeTaehvPrecision): NativeWanVaeHandle;
  wanVaeDestroy(handle: NativeWanVaeHandle): void;
  /** One weight under its checkpoint key (conv2.*, decoder.*), PyTorch layout; latent.mean / latent.std [zDim] optional. */
  wanVaeSetWeight(handle: NativeWanVaeHandle, key: string, data: Float32Array): void;
  /** Checks every weight was given; warmupFrames > 0 plans the convolutions on a first and a later block of zeros. */
  wanVaeFinalize(handle: NativeWanVaeHandle, warmupFrames: number): Promise<number>;
  /** latent [zDim, frames, H, W] -> RGB24 frames into out; resolves to the frames written (4F, or 4F - 3 first). */
  wanVaeDecode(handle: NativeWanVaeHandle, latent: Float32Array, frames: number, out: Uint8Array): Promise<number>;
  wanVaeReset(handle: NativeWanVaeHandle): Promise<number>;
  wanVaeInfo(handle: NativeWanVaeHandle): NativeWanVaeInfo;
}

/** The C ABI version this wrapper was written for (SSN_ABI_VERSION in native/src/capi.h). */
export const NATIVE_ABI_VERSION = 9;
