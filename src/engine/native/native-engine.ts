/**
 * The CUDA engine (native/): the Engine contract over the Node-API addon. Weights, the K/V cache
 * and kept queries live on the GPU; only latents, flows, the host's small cache plans and scores
 * cross. Calls are serialised per engine (the addon runs each on libuv's thread pool).
 *
 * Precision: engine.dtype 'float16' selects the fast path (bf16 storage, Wan's training type, with
 * tensor-core products and fp32 accumulation); 'fp8' is that path with the products after the norms and in the
 * feed-forward in E4M3 (per-row scales); 'float32' (the default) keeps everything in fp32.
 */
import { statSync } from 'node:fs';
import type { Config } from '../../config/schema.js';
import { SinkstreamError } from '../../errors.js';
import { modelDims, type ModelDims } from '../../model/dims.js';
import { TEXT_ENCODER_KEYS } from '../../model/expected-shapes.js';
import { loadWeights } from '../../model/load-weights.js';
import type { BatchedForward, CacheUpdate, DenoiseStepsRequest, Engine, EngineInfo, EngineOptions, ForwardRequest, ForwardResult, QuerySelection } from '../types.js';
import type { NativeAddon, NativeBatchRequest, NativeForwardStats, NativeHandle, NativePrecision } from './addon-types.js';
import { NativeCallQueue, nativeError, runOnAll } from './call-queue.js';
import { loadNativeAddon } from './addon-loader.js';
import { stageRanges } from '../pipeline-engine.js';

const KEEP_QUERIES = { none: 0, sum: 1, max: 2 } as const;

/**
 * What names the weights' content, for sharing one copy between engines in this process: the synthetic
 * generator's seed and scale, or the checkpoint's path, size and modification time ('' when it cannot be
 * read: no sharing, and loading reports the problem).
 */
export function weightsIdentity(config: Pick<Config, 'model'>): string {
  const m = config.model;
  const file = (p: string): string => {
    const st = statSync(p);
    return `file ${p} ${st.size} ${st.mtimeMs}`;
  };
  try {
    const base = m.weights === 'synthetic' ? `synthetic seed ${m.syntheticSeed} scale ${m.syntheticScale}` : `${file(m.weights)} entry ${m.generatorKey ?? 'default'}`;
    return m.lora === undefined ? base : `${base} + lora ${file(m.lora)} scale ${m.loraScale} alpha ${m.loraAlpha ?? 'default'}`;
  } catch {
    return '';
  }
}

const ENGINE = 'native engine';
/** engine.attentionKernel as the addon's setAttentionKernel takes it. */
const ATTENTION_KERNEL_MODES = { auto: 0, cudnn: 1, hopper: 2 } as const;
/** What the engine reports as its attention (after the precision) when self-attention runs on the own Hopper kernels. */
const HOPPER_KERNEL = 'own Hopper kernel (wgmma + TMA)';

/**
 * engine.cudaGraphs as the addon takes it: `auto` = on for the bf16 path on one GPU, `on` = on for any precision on
 * one GPU, `off` = never; an engine over several GPUs (stages > 1) runs direct launches whatever the setting.
 */
export function cudaGraphsMode(engine: Pick<Config['engine'], 'cudaGraphs' | 'dtype'>, stages: number): 0 | 1 {
  if (stages > 1 || engine.cudaGraphs === 'off') return 0;
  return engine.cudaGraphs === 'on' || engine.dtype !== 'float32' ? 1 : 0;
}

/** The stream's engine work run from C for comparison with the Node path (NativeEngine.loopBlocks). */
export interface BlockLoopRequest {
  /** [C, F, H, W]: the first noise and every re-noise of each block. */
  noise: Float32Array;
  /** Sigmas of the denoising steps, in (0, 1]. */
  sigmas: number[];
  /** [F] the block's frame positions (every block uses the same). */
  framePositions: Int32Array;
  blocks: number;
  /** Rows the sink keeps at the cache's start. */
  sinkRows: number;
}

/** Per block of the C loop: its wall ms, its forwards' ms and its cache update's ms. */
export interface BlockLoopResult {
  blockMs: number[];
  forwardsMs: number[];
  updateMs: number[];
}

/** The addon's profile phases, in its order (ssn_profile_read). */
export const PROFILE_PHASES = ['embed', 'products', 'selfAttention', 'crossAttention', 'elementwise', 'head'] as const;
export type PhaseMs = Record<(typeof PROFILE_PHASES)[number], number>;

/** Engines created so far in this process: each one's number orders the call queues a batched forward holds. */
let enginesCreated = 0;

export class NativeEngine implements Engine {
  readonly name = 'native';
  private readonly calls: NativeCallQueue<NativeHandle>;
  private readonly serial = ++enginesCreated;
  private cacheRows = 0;
  private pendingRows = 0;
  /** denoiseSteps' flow between its forwards (the addon's scratch; kept for the next block). */
  private denoiseFlow: Float32Array | undefined;

  private constructor(
    private readonly addon: NativeAddon,
    handle: NativeHandle,
    private readonly dims: ModelDims,
    private readonly provider: string,
    private readonly precisionName: 'bf16' | 'bf16+fp8' | 'fp32',
    private readonly attention: string,
    /** Whether CUDA graphs were asked for (the addon may still fall back: forwardStats().graphFallback). */
    readonly cudaGraphs: boolean,
    /** Engines of one weight set, model shape, device and precision, on one GPU each (absent: no batched forwards). */
    readonly batchKey?: string,
  ) {
    this.calls = new NativeCallQueue(handle, ENGINE);
  }

  static async create(options: EngineOptions): Promise<NativeEngine> {
    const { config } = options;
    const { addon, probe } = loadNativeAddon();
    const device = config.engine.device;
    const stages = stageRanges(config);
    const devices = config.engine.devices ?? stages.map((_, i) => device + i);
    for (const [i, d] of devices.entries()) {
      if (d >= probe.devices) {
        const key = config.engine.devices ? `engine.devices[${i}]` : stages.length > 1 ? `engine.device + ${i} (stage ${i})` : 'engine.device';
        throw new SinkstreamError(
          'ERR_ENGINE_UNAVAILABLE',
          `${key} = ${d}: the CUDA addon sees ${probe.devices} device(s)${probe.devices ? ` (${probe.names.join(', ')})` : ''}`,
        );
      }
    }
    const dims = modelDims(config);
    const precision: NativePrecision = config.engine.dtype === 'float32' ? 1 : 0;
    let handle: NativeHandle;
    try {
      const key = weightsIdentity(config);
      handle =
        stages.length > 1
          ? addon.createPipeline(dims, precision, Int32Array.from(devices), Int32Array.from(stages.map(([from, to]) => to - from)), key)
          : addon.createEngine(dims, devices[0], precision, key);
    } catch (e) {
      throw new SinkstreamError('ERR_ENGINE_UNAVAILABLE', `native engine: ${(e as Error).message}`, { cause: e });
    }
    const graphs = cudaGraphsMode(config.engine, stages.length);
    // what the configuration asks for, on a machine that cannot run it: bad input, like a missing addon
    const gpuSettings: [string, () => void][] = [];
    if (config.engine.dtype === 'fp8') gpuSettings.push(["engine.dtype 'fp8'", () => addon.setProductPrecision(handle, 1)]);
    if (config.engine.attention === 'fp8') gpuSettings.push(["engine.attention 'fp8'", () => addon.setAttentionPrecision(handle, 1)]);
    const kernelMode = ATTENTION_KERNEL_MODES[config.engine.attentionKernel];
    if (kernelMode !== 0) gpuSettings.push([`engine.attentionKernel '${config.engine.attentionKernel}'`, () => addon.setAttentionKernel(handle, kernelMode)]);
    for (const [key, apply] of gpuSettings) {
      try {
        apply();
      } catch (e) {
        addon.destroy(handle);
        throw new SinkstreamError('ERR_ENGINE_UNAVAILABLE', `${key}: ${(e as Error).message}`, { cause: e });
      }
    }
    try {
      addon.setCudaGraphs(handle, graphs);
      // A later stream's engine shares the first one's weights on the GPU: nothing to read or copy.
      if (!addon.weightsShared(handle)) {
        const weights = await loadWeights(config);
        for (const [key, tensor] of weights) {
          if (TEXT_ENCODER_KEYS.has(key)) continue; // the built-in text encoder's tables run on the host
          addon.setWeight(handle, key, tensor.data);
        }
        addon.finalize(handle);
      }
    } catch (e) {
      addon.destroy(handle);
      throw nativeError(ENGINE, e);
    }
    const gpus = devices.map((d) => `cuda:${d} (${probe.names[d]})`).join(' -> ');
    // The fp32 path always runs the engine's own attention kernel; bf16 says which it chose (the own Hopper kernel,
    // cuDNN, or why neither).
    const hopper = precision === 0 && addon.attentionKernel(handle) === 2;
    const backend = precision !== 0 ? 'own kernel (fp32)' : hopper ? HOPPER_KERNEL : addon.attentionBackend();
    const attention = config.engine.attention === 'fp8' ? `fp8 (E4M3), ${backend}` : hopper ? `${backend}, bf16` : backend;
    const precisionName = precision === 1 ? 'fp32' : config.engine.dtype === 'fp8' ? 'bf16+fp8' : 'bf16';
    const precisionWords = precisionName === 'bf16+fp8' ? 'bf16 with fp8 products (E4M3, per-row scales)' : precisionName;
    const provider = `${gpus}, ${precisionWords}, attention: ${attention}`;
    const identity = weightsIdentity(config);
    // the addon joins forwards of single-GPU engines holding one weight set (one weights key) on one device; a batch
    // runs every stream's attention in the first engine's precision, so the attention setting is part of the key
    const batchKey =
      stages.length === 1 && identity !== '' && typeof addon.forwardBatch === 'function'
        ? `${identity}|cuda:${devices[0]}|${precisionName}|attention ${config.engine.attention}|${backend}|${JSON.stringify(dims)}`
        : undefined;
    return new NativeEngine(addon, handle, dims, provider, precisionName, attention, graphs === 1, batchKey);
  }

  private run<T>(op: (handle: NativeHandle) => Promise<T> | T): Promise<T> {
    return this.calls.run(op);
  }

  setPrompt(context: Float32Array): Promise<void> {
    const want = this.dims.textLen * this.dims.textDim;
    if (context.length !== want) {
      return Promise.reject(new SinkstreamError('ERR_ENGINE', `setPrompt: context has ${context.length} values, expected ${this.dims.textLen} x ${this.dims.textDim}`));
    }
    return this.run(async (h) => {
      await this.addon.setPrompt(h, context);
    });
  }

  /** The request's shape error (a SinkstreamError), or null. */
  private checkRequest(request: ForwardRequest, what = 'forward'): SinkstreamError | null {
    const { latentChannels: C, latentHeight: H, latentWidth: W } = this.dims;
    const F = request.timesteps.length;
    if (F === 0 || request.latent.length !== C * F * H * W || request.framePositions.length !== F) {
      return new SinkstreamError(
        'ERR_ENGINE',
        `${what}: latent has ${request.latent.length} values and ${request.framePositions.length} frame positions for ${F} timesteps; expected [${C}, ${F}, ${H}, ${W}] and ${F}`,
      );
    }
    return null;
  }

  /** The array the request's flow goes into (its flowInto where that fits). */
  private flowFor(request: ForwardRequest): Float32Array {
    const size = request.latent.length;
    return request.flowInto?.length === size ? request.flowInto : new Float32Array(size);
  }

  forward(request: ForwardRequest): Promise<ForwardResult> {
    const bad = this.checkRequest(request);
    if (bad) return Promise.reject(bad);
    return this.run(async (h) => {
      const flow = this.flowFor(request);
      const id = await this.addon.forward(h, request.latent, request.timesteps, request.framePositions, request.keepBlockKv, KEEP_QUERIES[request.keepQueries], flow);
      if (request.keepBlockKv) this.pendingRows = request.timesteps.length * this.dims.tokensPerFrame;
      return id >= 0 ? { flow, queriesId: id } : { flow };
    });
  }

  /** A block's steps in one addon call: its forwards back to back from C, the sampler between them on the GPU. */
  denoiseSteps(request: DenoiseStepsRequest): Promise<void> {
    const { latentChannels: C, latentHeight: H, latentWidth: W } = this.dims;
    const F = request.framePositions.length;
    const size = C * F * H * W;
    const steps = request.sigmas.length;
    if (F === 0 || steps === 0 || request.latent.length !== size || request.x0Into.length !== size || (request.noises && request.noises.length !== (steps - 1) * size)) {
      return Promise.reject(
        new SinkstreamError(
          'ERR_ENGINE',
          `denoiseSteps: latent ${request.latent.length}, x0 ${request.x0Into.length}, noises ${request.noises?.length ?? 'none'} values for ${F} frames and ${steps} steps; expected [${C}, ${F}, ${H}, ${W}] each and ${steps - 1} noises`,
        ),
      );
    }
    return this.run(async (h) => {
      this.denoiseFlow = this.denoiseFlow?.length === size ? this.denoiseFlow : new Float32Array(size);
      await this.addon.denoiseSteps(h, request.latent, F, request.framePositions, Float64Array.from(request.sigmas), request.noises ?? null,
        request.samplePrediction, request.sigmaFloor, this.denoiseFlow, request.x0Into);
    });
  }

  /**
   * The forwards of several native engines of this one's batchKey (this one among them or not) as one call to the
   * addon: it waits for each engine's earlier calls and holds all of them while it runs (a batch that repeats is
   * replayed from one CUDA graph, as a single forward is).
   */
  forwardBatch(items: BatchedForward[]): Promise<ForwardResult[]> {
    const engines: NativeEngine[] = [];
    for (const [i, item] of items.entries()) {
      const e = item.engine;
      if (!(e instanceof NativeEngine) || this.batchKey === undefined || e.batchKey !== this.batchKey) {
        return Promise.reject(new SinkstreamError('ERR_ENGINE', `forwardBatch: item ${i}'s engine cannot join this batch (batched forwards need native engines on one GPU with one weight set)`));
      }
      if (engines.includes(e)) return Promise.reject(new SinkstreamError('ERR_ENGINE', `forwardBatch: item ${i}'s engine is in the batch twice`));
      const bad = e.checkRequest(item.request, `forwardBatch item ${i}`);
      if (bad) return Promise.reject(bad);
      engines.push(e);
    }
    if (engines.length === 0) return Promise.resolve([]);
    // the items in the engines' creation order: the queues are taken in it, and the addon runs the batch on the first
    // one's stream and workspace (the same engine for every batch of these streams: one workspace grows, not each)
    const order = items.map((_, i) => i).sort((a, b) => engines[a].serial - engines[b].serial);
    return runOnAll(
      order.map((i) => engines[i].calls),
      async (handles) => {
        const requests: NativeBatchRequest[] = order.map((i) => {
          const { request } = items[i];
          return {
            latent: request.latent,
            timesteps: request.timesteps,
            framePositions: request.framePositions,
            keepBlockKv: request.keepBlockKv,
            keepQueries: KEEP_QUERIES[request.keepQueries],
            flow: engines[i].flowFor(request),
          };
        });
        const ids = new Int32Array(items.length).fill(-1);
        await this.addon.forwardBatch(handles, requests, ids);
        const results: ForwardResult[] = new Array(items.length);
        order.forEach((i, k) => {
          const { request } = items[i];
          if (request.keepBlockKv) engines[i].pendingRows = request.timesteps.length * this.dims.tokensPerFrame;
          results[i] = ids[k] >= 0 ? { flow: requests[k].flow, queriesId: ids[k] } : { flow: requests[k].flow };
        });
        return results;
      },
    );
  }

  updateCache(update: CacheUpdate): Promise<void> {
    const tables = update.perLayer ? this.dims.layers : 1;
    const entries = tables * update.rows * update.terms;
    if (update.sources.length !== entries || update.weights.length !== entries || update.positions.length !== tables * update.rows * 3) {
      return Promise.reject(new SinkstreamError('ERR_ENGINE', `updateCache: arrays do not match ${tables} table(s) x ${update.rows} rows x ${update.terms} terms`));
    }
    return this.run(async (h) => {
      await this.addon.updateCache(h, update.rows, update.terms, update.perLayer, update.sources, update.weights, update.positions);
      this.cacheRows = update.rows;
      this.pendingRows = 0;
    });
  }

  scoreCache(queries: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array> {
    return this.run(async (h) => {
      const out = new Float32Array(this.dims.layers * this.cacheRows);
      await this.addon.scoreCache(
        h,
        Int32Array.from(queries, (q) => q.queriesId),
        Int32Array.from(queries, (q) => q.frames[0]),
        Int32Array.from(queries, (q) => q.frames[1]),
        reduce === 'max' ? 1 : 0,
        out,
      );
      return out;
    });
  }

  releaseQueries(queriesId: number): Promise<void> {
    return this.run(async (h) => {
      await this.addon.releaseQueries(h, queriesId);
    });
  }

  resetCache(): Promise<void> {
    return this.run(async (h) => {
      await this.addon.resetCache(h);
      this.cacheRows = 0;
      this.pendingRows = 0;
    });
  }

  readCache(): Promise<{ keys: Float32Array; values: Float32Array; positions: Float32Array; rows: number }> {
    return this.run(async (h) => {
      const rows = this.cacheRows;
      const { layers, dim } = this.dims;
      const keys = new Float32Array(layers * rows * dim);
      const values = new Float32Array(layers * rows * dim);
      const positions = new Float32Array(layers * rows * 3);
      await this.addon.readCache(h, keys, values, positions);
      return { keys, values, positions, rows };
    });
  }

  /** The addon's own timing of every forward since the last reset (waits for the calls queued before). */
  forwardStats(reset = false): Promise<NativeForwardStats> {
    return this.run((h) => this.addon.forwardStats(h, reset));
  }

  /** cuDNN attention plans this engine built (and the ms), and those it found built by another engine. */
  attentionPlans(): Promise<{ built: number; ms: number; reused: number }> {
    return this.run((h) => this.addon.attentionPlans(h));
  }

  /**
   * `work` (calls on this engine) with the engine's profile on: device ms per phase of the forwards it ran, summed.
   * Profiled forwards record an event between phases and run without CUDA graphs.
   */
  async profiled<T>(work: () => Promise<T>): Promise<{ result: T; phaseMs: PhaseMs }> {
    const before = await this.run((h) => {
      this.addon.profile(h, true);
      return this.addon.profileRead(h);
    });
    let result: T;
    let after: Float64Array;
    try {
      result = await work();
    } finally {
      after = await this.run((h) => {
        this.addon.profile(h, false);
        return this.addon.profileRead(h);
      });
    }
    const phaseMs = Object.fromEntries(PROFILE_PHASES.map((name, i) => [name, after[i] - before[i]])) as PhaseMs;
    return { result, phaseMs };
  }

  /**
   * Whole blocks of the stream's engine work run from C, on the cache as it is (see BlockLoopRequest): what the same
   * work costs with no JavaScript between the calls. Replaces the cached rows' content: reset the cache after.
   */
  loopBlocks(request: BlockLoopRequest): Promise<BlockLoopResult> {
    const { latentChannels: C, latentHeight: H, latentWidth: W, tokensPerFrame, gridWidth } = this.dims;
    const F = request.framePositions.length;
    if (F === 0 || request.noise.length !== C * F * H * W || request.sigmas.length === 0 || !Number.isInteger(request.blocks) || request.blocks < 1) {
      return Promise.reject(
        new SinkstreamError('ERR_ENGINE', `loopBlocks: noise of ${request.noise.length} values for ${F} frames, ${request.sigmas.length} sigmas, ${request.blocks} blocks; expected [${C}, ${F}, ${H}, ${W}], >= 1, >= 1`),
      );
    }
    return this.run(async (h) => {
      const out = new Float64Array(3 * request.blocks);
      await this.addon.loopBlocks(h, request.noise, F, Float32Array.from(request.sigmas), request.framePositions, tokensPerFrame, gridWidth, request.blocks, request.sinkRows, out);
      const info = this.addon.cacheInfo(h);
      this.cacheRows = info.rows;
      this.pendingRows = info.pending;
      const column = (k: number): number[] => Array.from({ length: request.blocks }, (_, b) => out[3 * b + k]);
      return { blockMs: column(0), forwardsMs: column(1), updateMs: column(2) };
    });
  }

  info(): EngineInfo {
    return {
      name: this.name,
      provider: this.provider,
      precision: this.precisionName,
      attention: this.attention,
      cacheRows: this.cacheRows,
      pendingRows: this.pendingRows,
    };
  }

  /** Idempotent: waits for calls in flight, then frees the GPU memory. */
  close(): Promise<void> {
    return this.calls.close((h) => this.addon.destroy(h));
  }
}

export function createNativeEngine(options: EngineOptions): Promise<Engine> {
  return NativeEngine.create(options);
}
