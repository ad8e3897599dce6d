/**
 * The engine contract. An engine runs the transformer and moves tensors; it never decides what the
 * cache keeps. Every engine (ONNX Runtime CPU / WebGPU, the CUDA addon in native/) implements this
 * interface, and one shared contract suite (test/engine/contract.test.ts) runs against each.
 *
 * Tensor layouts (batch 1, float32 on the host side, row-major):
 *   latent   [C, F, H, W]            C = latent channels, F = frames in the block, H x W latent pixels
 *   flow     [C, F, H, W]            the model's velocity prediction
 *   context  [textLen, textDim]      text-encoder output for one prompt (zero-padded)
 * Cache rows are tokens. Each layer holds the same number of rows; a row is one token's
 * self-attention key (after RMSNorm, BEFORE RoPE) and value, plus its RoPE position
 * (frame, row, column). Keys are rotated at attention time from the positions, so re-placing a
 * cached frame on the timeline is a change of its positions alone.
 */
import type { Config } from '../config/schema.js';

/** How the new cache is formed from the current rows and the pending block rows. */
export interface CacheUpdate {
  /** Rows after the update (the same for every layer). */
  rows: number;
  /** Sources per row (1 for gathers; more when rows are blended, e.g. EMA sinks). */
  terms: number;
  /** true: the arrays below hold one table per layer; false: one table shared by all layers. */
  perLayer: boolean;
  /**
   * [tables, rows, terms] indices into the concatenation [current rows ‖ pending block rows].
   * Unused terms have weight 0 (their index must still be valid, e.g. 0).
   */
  sources: Int32Array;
  /** [tables, rows, terms] weights: new row = sum over terms of weight * source row (K and V alike). */
  weights: Float32Array;
  /** [tables, rows, 3] RoPE positions (frame, row, column) of every new row. */
  positions: Float32Array;
}

export interface ForwardRequest {
  /** [C, F, H, W]; the engine reads it only until the forward settles (the caller may then write it again). */
  latent: Float32Array;
  /** [F] timestep per frame on Wan's 0..1000 scale (0 for the clean pass). */
  timesteps: Float32Array;
  /** [F] temporal RoPE position of each of the block's frames. */
  framePositions: Int32Array;
  /** Clean pass: keep this block's K/V as the pending block rows for the next `updateCache`. */
  keepBlockKv: boolean;
  /** Keep this pass's RoPE'd queries for `scoreCache` (participative compression). */
  keepQueries: 'none' | 'sum' | 'max';
  /**
   * [C, F, H, W]: an array the engine may write the flow into and return as the result's `flow`, instead of a new
   * one (a caller that uses one array for every step); an engine may ignore it. Not to be read or written until
   * the forward settles.
   */
  flowInto?: Float32Array;
}

/**
 * A block's denoising steps from its first noise, as the generator runs them one forward at a time (src/loop/generator.ts,
 * the sampler's arithmetic of src/loop/sampler.ts between the forwards): no block K/V and no queries kept.
 */
export interface DenoiseStepsRequest {
  /** [C, F, H, W] the block's first noise; the steps' latent (overwritten: not to be read after). */
  latent: Float32Array;
  /** [F] the block's frame positions. */
  framePositions: Int32Array;
  /** The steps' noise levels in (0, 1], first to last. */
  sigmas: number[];
  /** The re-noise sampler's fresh noise of steps 1 .. n-1, one latent after another; absent: Euler steps (`ode`). */
  noises?: Float32Array;
  /** The head predicts x0 (`model.arch.prediction: sample`): it becomes the flow (x - x0) / max(sigma, sigmaFloor). */
  samplePrediction: boolean;
  sigmaFloor: number;
  /** [C, F, H, W]: the last step's x0 is written here. */
  x0Into: Float32Array;
}

export interface ForwardResult {
  /** [C, F, H, W] the head's output: the flow, or x0 for a model of `model.arch.prediction: sample` (the loop converts it). */
  flow: Float32Array;
  /** Handle of the kept queries when `keepQueries` was not 'none'; release with `releaseQueries`. */
  queriesId?: number;
}

export interface QuerySelection {
  queriesId: number;
  /** Frames of that pass, [start, end) in block-frame units. */
  frames: [number, number];
}

export interface EngineInfo {
  name: string;
  /** What runs the forwards, in the engine's own words (the native engine: GPUs, precision, attention). */
  provider: string;
  /** Compute precision of the forwards as the engine built them ('bf16', 'fp16', 'fp32'); absent: not said. */
  precision?: string;
  /** What runs self-attention (the native engine: cuDNN and its version, or its own kernel); absent: not said. */
  attention?: string;
  /** Rows currently in the cache (every layer). */
  cacheRows: number;
  /** Pending block rows from the last clean pass. */
  pendingRows: number;
}

/** One stream's forward in a batched call: the stream's engine (its cache and prompt) and its request. */
export interface BatchedForward {
  engine: Engine;
  request: ForwardRequest;
}

export interface Engine {
  readonly name: string;
  /**
   * Engines whose forwards can run as one batched call (`forwardBatch`) have the same batchKey (same weights, shape
   * and device); absent on engines that cannot (their forwards run one by one: forwardTogether, src/engine/batch.ts).
   */
  readonly batchKey?: string;
  /**
   * The forwards of several streams, each on its own engine (every one with this engine's batchKey), as one call:
   * each result is what that engine's forward(request) gives (up to the products' rounding at another row count),
   * with the same effect on its cache. Results in the items' order.
   */
  forwardBatch?(items: BatchedForward[]): Promise<ForwardResult[]>;
  /**
   * A block's denoising steps in one call, with nothing of the caller's between the forwards (the native engine runs
   * them from C). The same bits as the generator's step-by-step loop over forward(); absent on engines without it.
   */
  denoiseSteps?(request: DenoiseStepsRequest): Promise<void>;
  /** Sets the prompt: computes and keeps every layer's cross-attention K/V. context: [textLen, textDim]. */
  setPrompt(context: Float32Array): Promise<void>;
  /** One forward pass of one block at one timestep, attending to [cache ‖ block]. */
  forward(request: ForwardRequest): Promise<ForwardResult>;
  /** Rebuilds the cache from its rows and the pending block rows; clears the pending rows. */
  updateCache(update: CacheUpdate): Promise<void>;
  /**
   * Participative-compression scores of every cache row, per layer: [layers, rows].
   * phi_j = sum over heads of (q . k_j) / (heads * sqrt(headDim)), q = the selected queries (RoPE'd)
   * summed ('sum') or the max of the per-query dot products ('max'), k_j rotated at its position.
   */
  scoreCache(queries: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array>;
  releaseQueries(queriesId: number): Promise<void>;
  /** Empties the cache (and the pending rows): a new video. */
  resetCache(): Promise<void>;
  /** Reads the cache back (tests and debugging only; never on the hot path). keys/values [layers, rows, dim]. */
  readCache(): Promise<{ keys: Float32Array; values: Float32Array; positions: Float32Array; rows: number }>;
  info(): EngineInfo;
  /** Idempotent. */
  close(): Promise<void>;
}

/**
 * What an engine is built from: the validated config. The engine loads the weights itself
 * (`loadWeights` in src/model/load-weights.ts), inside its worker or addon, so gigabytes of weights never
 * cross a thread boundary.
 */
export interface EngineOptions {
  config: Config;
}

export type EngineFactory = (options: EngineOptions) => Promise<Engine>;
