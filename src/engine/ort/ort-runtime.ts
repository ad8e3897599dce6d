/**
 * The ONNX Runtime engine's work, on whatever thread runs it (the engine's worker; the benchmark
 * runs it in-process). Holds four kinds of sessions built from the model's graphs:
 *   text-kv (once per prompt), transformer (every forward), cache update, cache scores.
 *
 * Where the cache lives: with `resident`, every K/V tensor on the WebGPU provider (the prompt's
 * cross K/V, the cache, the pending block rows, kept queries) is a session output left on the GPU
 * ('gpu-buffer') and fed back as an input; only the flow, per-frame query sums and scores come back
 * to the host. On the CPU provider the same graphs run on host tensors.
 *
 * The resident path must fetch every output of the transformer session: onnxruntime-node 1.30
 * aborts the process ("terminate called after throwing an instance of 'char const*'") when a run
 * fetches a subset of outputs that have per-output 'gpu-buffer' locations (seen on an H100 through
 * Dawn over Vulkan, reproduced on Mesa's lavapipe). Fetching all of them and releasing the unwanted
 * ones at once (they never leave the GPU) runs. `Tensor.getData()` on a 'gpu-buffer' tensor aborts
 * the same way, so the resident cache is read back through a small graph (readCache).
 * tools/bench/webgpu-forward.ts measures both paths (--host-cache for the round trip).
 */
import * as ort from 'onnxruntime-node';
import { SinkstreamError } from '../../errors.js';
import type { ModelDims } from '../../model/dims.js';
import type { ModelWeights } from '../../model/weights.js';
import { buildCacheReadGraph, buildCacheUpdateGraph, buildScoreGraph, READ_IO, SCORE_IO, UPDATE_IO } from '../../onnx/cache-graphs.js';
import { float16ToFloat32 } from '../../onnx/float16.js';
import type { FloatType } from '../../onnx/layers.js';
import { buildTextKvGraph, TEXT_KV_IO } from '../../onnx/text-kv-graph.js';
import { buildTransformerGraph, TRANSFORMER_IO } from '../../onnx/transformer-graph.js';
import type { CacheUpdate, EngineInfo, ForwardRequest, QuerySelection } from '../types.js';
import { createSession, type OwnedSession, type Provider, type SessionSettings } from './sessions.js';

export interface OrtRuntimeOptions {
  dims: ModelDims;
  weights: ModelWeights;
  provider: Provider;
  /** CPU intra-op threads, 0 = all cores. */
  threads: number;
  /** CPU: idle threads spin-wait instead of sleeping (config engine.allowSpinning; default false). */
  allowSpinning?: boolean;
  /** Compute type on the GPU; the CPU provider always runs float32. */
  dtype: FloatType;
  /** WebGPU: keep K/V tensors on the GPU between calls (config engine.residentCache; default false here). */
  resident?: boolean;
  /**
   * A pipeline stage: only the model's layers [from, to). Its input is the previous stage's hidden
   * state [F, T, d] unless it is the first, its output the next stage's unless it is the last; the
   * cache operations cover its layers only (per-layer update tables are sliced to them).
   */
  layers?: readonly [number, number];
}

interface CacheState {
  rows: number;
  k: ort.Tensor[];
  /** The keys rotated at their positions (the update graph makes them once; every forward reads them). */
  kRot: ort.Tensor[];
  v: ort.Tensor[];
  pos: ort.Tensor[];
  /** [layers, rows, 3] host copy of the positions (readCache). */
  positions: Float32Array;
}

interface PendingRows {
  rows: number;
  k: ort.Tensor[];
  v: ort.Tensor[];
}

interface KeptQueries {
  frames: number;
  /** [layers, frames, d] per-frame sums of the RoPE'd queries. */
  sums: Float32Array;
  /** Per layer [frames*T, d] RoPE'd queries ('max' only). */
  all: ort.Tensor[] | null;
}

export interface RuntimeForwardResult {
  flow: Float32Array;
  queriesId?: number;
}

const fail = (message: string): SinkstreamError => new SinkstreamError('ERR_ENGINE', message);

function dispose(tensors: Iterable<ort.Tensor>): void {
  for (const t of tensors) if (t.location === 'gpu-buffer') t.dispose();
}

export class OrtRuntime {
  /** The stage's sizes: `layers` is the number of layers this runtime holds. */
  readonly dims: ModelDims;
  /** The model's index of this runtime's first layer, and the model's layer count. */
  private readonly from: number;
  private readonly modelLayers: number;
  readonly provider: Provider;
  readonly dtype: FloatType;
  /** K/V tensors stay on the GPU between calls (WebGPU only). */
  readonly resident: boolean;
  private readonly allowSpinning: boolean;
  private readonly scoreSessions = new Map<string, Promise<OwnedSession>>();
  private readSession: Promise<OwnedSession> | null = null;
  private crossKv: { k: ort.Tensor[]; v: ort.Tensor[] } | null = null;
  private cache: CacheState;
  private pending: PendingRows | null = null;
  private readonly queries = new Map<number, KeptQueries>();
  private nextQueriesId = 1;
  private closed = false;

  private constructor(
    options: OrtRuntimeOptions,
    private readonly text: OwnedSession,
    private readonly transformer: OwnedSession,
    private readonly update: OwnedSession,
    private readonly threads: number,
  ) {
    const [from, to] = options.layers ?? [0, options.dims.layers];
    this.dims = { ...options.dims, layers: to - from };
    this.from = from;
    this.modelLayers = options.dims.layers;
    this.provider = options.provider;
    this.dtype = options.provider === 'cpu' ? 'float32' : options.dtype;
    this.resident = options.provider === 'webgpu' && (options.resident ?? false);
    this.allowSpinning = options.allowSpinning ?? false;
    this.cache = this.emptyCache();
  }

  static async create(options: OrtRuntimeOptions): Promise<OrtRuntime> {
    const { dims, weights, provider, threads } = options;
    const dtype: FloatType = provider === 'cpu' ? 'float32' : options.dtype;
    const [from, to] = options.layers ?? [0, dims.layers];
    const L = to - from;
    /** Transformer and prompt graphs name layers by the model's index; the cache graphs by the stage's. */
    const names = (f: (i: number) => string): string[] => Array.from({ length: L }, (_, i) => f(from + i));
    const local = (f: (i: number) => string): string[] => Array.from({ length: L }, (_, i) => f(i));
    const stageDims: ModelDims = { ...dims, layers: L };
    const last = to === dims.layers;
    const resident = provider === 'webgpu' && (options.resident ?? false);
    const allowSpinning = options.allowSpinning ?? false;
    const onGpu = (keep: (n: string) => boolean) => ({ provider, threads, allowSpinning, gpuOutputs: (n: string) => resident && keep(n) });

    const textOutputs = [...names(TEXT_KV_IO.crossK), ...names(TEXT_KV_IO.crossV)];
    const text = await createSession(buildTextKvGraph(dims, weights, dtype, [from, to]), onGpu(() => true), textOutputs);

    const io = TRANSFORMER_IO;
    const stageOut = last ? io.flow : io.hiddenOut;
    const trOutputs = [stageOut, ...names(io.blockK), ...names(io.blockV), ...names(io.querySums), ...names(io.queries)];
    const hostOutputs = new Set([stageOut, ...names(io.querySums)]);
    const transformer = await createSession(
      buildTransformerGraph(dims, weights, { dtype, attentionPresent: provider === 'webgpu', layers: [from, to], cacheKeys: 'rotated' }),
      onGpu((n) => !hostOutputs.has(n)),
      trOutputs,
    );

    const upOutputs = [...local(UPDATE_IO.newK), ...local(UPDATE_IO.newV), ...local(UPDATE_IO.newPos), ...local(UPDATE_IO.newKRot)];
    const update = await createSession(buildCacheUpdateGraph(stageDims, dtype), onGpu(() => true), upOutputs);
    return new OrtRuntime({ ...options, dtype, resident }, text, transformer, update, threads);
  }

  // ---- tensors

  private emptyRows(width: number, type: 'compute' | 'float32' = 'compute'): ort.Tensor {
    if (type === 'compute' && this.dtype === 'float16') return new ort.Tensor('float16', new Uint16Array(0), [0, width]);
    return new ort.Tensor('float32', new Float32Array(0), [0, width]);
  }

  private emptyCache(): CacheState {
    const L = this.dims.layers;
    const d = this.dims.dim;
    return {
      rows: 0,
      k: Array.from({ length: L }, () => this.emptyRows(d)),
      kRot: Array.from({ length: L }, () => this.emptyRows(d)),
      v: Array.from({ length: L }, () => this.emptyRows(d)),
      pos: Array.from({ length: L }, () => this.emptyRows(3, 'float32')),
      positions: new Float32Array(0),
    };
  }

  private async toHost(t: ort.Tensor): Promise<Float32Array> {
    // Never Tensor.getData on a 'gpu-buffer' tensor: it aborts the process (readThroughSession).
    if (t.location !== 'cpu') throw fail(`internal: a ${t.location} tensor was read on the host directly`);
    const data = t.data;
    if (data instanceof Float32Array) return data;
    if (data instanceof Uint16Array) return float16ToFloat32(data);
    throw fail(`unexpected tensor type ${t.type}`);
  }

  private check(): void {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'the ort engine is closed');
  }

  // ---- Engine operations

  async setPrompt(context: Float32Array): Promise<void> {
    this.check();
    const { textLen, textDim, layers } = this.dims;
    if (context.length !== textLen * textDim) {
      throw fail(`setPrompt: context has ${context.length} values, expected textLen*textDim = ${textLen}*${textDim}`);
    }
    const out = await this.text.session.run({ [TEXT_KV_IO.context]: new ort.Tensor('float32', context, [textLen, textDim]) });
    if (this.crossKv) dispose([...this.crossKv.k, ...this.crossKv.v]);
    this.crossKv = {
      k: Array.from({ length: layers }, (_, i) => out[TEXT_KV_IO.crossK(this.from + i)] as ort.Tensor),
      v: Array.from({ length: layers }, (_, i) => out[TEXT_KV_IO.crossV(this.from + i)] as ort.Tensor),
    };
  }

  async forward(request: ForwardRequest): Promise<RuntimeForwardResult> {
    this.check();
    if (!this.crossKv) throw fail('forward: no prompt set; call setPrompt(context) first');
    const { latentChannels: C, latentHeight: H, latentWidth: W, layers, tokensPerFrame: T, dim: d } = this.dims;
    const F = request.timesteps.length;
    if (F === 0) throw fail('forward: timesteps is empty');
    const first = this.from === 0;
    const last = this.from + layers === this.modelLayers;
    if (first && request.latent.length !== C * F * H * W) {
      throw fail(`forward: latent has ${request.latent.length} values, expected C*F*H*W = ${C}*${F}*${H}*${W}`);
    }
    if (!first && request.latent.length !== F * T * d) {
      throw fail(`forward: stage ${this.from}: hidden state has ${request.latent.length} values, expected F*T*d = ${F}*${T}*${d}`);
    }
    if (request.framePositions.length !== F) {
      throw fail(`forward: framePositions has ${request.framePositions.length} entries, timesteps has ${F}`);
    }
    const io = TRANSFORMER_IO;
    const feeds: Record<string, ort.Tensor> = {
      [first ? io.latent : io.hidden]: first ? new ort.Tensor('float32', request.latent, [1, C, F, H, W]) : new ort.Tensor('float32', request.latent, [F, T, d]),
      [io.timesteps]: new ort.Tensor('float32', Float32Array.from(request.timesteps), [F]),
      [io.framePositions]: new ort.Tensor('float32', Float32Array.from(request.framePositions), [F]),
    };
    for (let i = 0; i < layers; i++) {
      const at = this.from + i;
      feeds[io.crossK(at)] = this.crossKv.k[i];
      feeds[io.crossV(at)] = this.crossKv.v[i];
      feeds[io.cacheKRot(at)] = this.cache.kRot[i];
      feeds[io.cacheV(at)] = this.cache.v[i];
    }
    const stageOut = last ? io.flow : io.hiddenOut;
    const fetches: string[] = [stageOut];
    const layerNames = (f: (i: number) => string): string[] => Array.from({ length: layers }, (_, i) => f(this.from + i));
    if (request.keepBlockKv) fetches.push(...layerNames(io.blockK), ...layerNames(io.blockV));
    if (request.keepQueries !== 'none') fetches.push(...layerNames(io.querySums));
    if (request.keepQueries === 'max') fetches.push(...layerNames(io.queries));

    // Resident: every output is fetched (they stay on the GPU, so this is free) and the unwanted
    // ones are released at once; fetching a subset aborts inside onnxruntime-node (note at the top).
    const out = this.resident
      ? await this.transformer.session.run(feeds, this.transformer.session.outputNames as string[])
      : await this.transformer.session.run(feeds, fetches);
    if (this.resident) {
      const wanted = new Set(fetches);
      dispose(Object.entries(out).filter(([name]) => !wanted.has(name)).map(([, t]) => t as ort.Tensor));
    }
    const flow = await this.toHost(out[stageOut] as ort.Tensor);

    if (request.keepBlockKv) {
      if (this.pending) dispose([...this.pending.k, ...this.pending.v]);
      this.pending = {
        rows: F * T,
        k: layerNames(io.blockK).map((n) => out[n] as ort.Tensor),
        v: layerNames(io.blockV).map((n) => out[n] as ort.Tensor),
      };
    }
    let queriesId: number | undefined;
    if (request.keepQueries !== 'none') {
      const sums = new Float32Array(layers * F * d);
      for (let i = 0; i < layers; i++) sums.set(await this.toHost(out[io.querySums(this.from + i)] as ort.Tensor), i * F * d);
      const all = request.keepQueries === 'max' ? layerNames(io.queries).map((n) => out[n] as ort.Tensor) : null;
      queriesId = this.nextQueriesId++;
      this.queries.set(queriesId, { frames: F, sums, all });
    }
    return { flow, queriesId };
  }

  async updateCache(update: CacheUpdate): Promise<void> {
    this.check();
    const { layers, dim: d } = this.dims;
    const { rows, terms } = update;
    const tables = update.perLayer ? this.modelLayers : 1;
    if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(terms) || terms < 1) {
      throw fail(`updateCache: rows ${rows} and terms ${terms} must be integers, rows >= 0, terms >= 1`);
    }
    const expect = (what: string, got: number, want: number): void => {
      if (got !== want) throw fail(`updateCache: ${what} has ${got} entries, expected ${want} (${tables} table(s) x ${rows} rows)`);
    };
    expect('sources', update.sources.length, tables * rows * terms);
    expect('weights', update.weights.length, tables * rows * terms);
    expect('positions', update.positions.length, tables * rows * 3);
    const available = this.cache.rows + (this.pending?.rows ?? 0);
    for (let j = 0; j < update.sources.length; j++) {
      const s = update.sources[j];
      if (!Number.isInteger(s) || s < 0 || s >= available) {
        throw fail(`updateCache: sources[${j}] = ${s} is outside [0, ${available}) (${this.cache.rows} cached + ${this.pending?.rows ?? 0} pending rows)`);
      }
    }

    // one table per layer on the device side
    const sources = new BigInt64Array(layers * rows * terms);
    const weights = new Float32Array(layers * rows * terms);
    const positions = new Float32Array(layers * rows * 3);
    for (let i = 0; i < layers; i++) {
      const t = update.perLayer ? this.from + i : 0;
      for (let j = 0; j < rows * terms; j++) {
        sources[i * rows * terms + j] = BigInt(update.sources[t * rows * terms + j]);
        weights[i * rows * terms + j] = update.weights[t * rows * terms + j];
      }
      positions.set(update.positions.subarray(t * rows * 3, (t + 1) * rows * 3), i * rows * 3);
    }

    const old = this.cache;
    const oldPending = this.pending;
    if (rows === 0) {
      this.cache = this.emptyCache();
    } else {
      const io = UPDATE_IO;
      const feeds: Record<string, ort.Tensor> = {
        [io.sources]: new ort.Tensor('int64', sources, [layers, rows, terms]),
        [io.weights]: new ort.Tensor('float32', weights, [layers, rows, terms]),
        [io.positions]: new ort.Tensor('float32', positions, [layers, rows, 3]),
      };
      for (let i = 0; i < layers; i++) {
        feeds[io.cacheK(i)] = old.k[i];
        feeds[io.cacheV(i)] = old.v[i];
        feeds[io.pendingK(i)] = oldPending?.k[i] ?? this.emptyRows(d);
        feeds[io.pendingV(i)] = oldPending?.v[i] ?? this.emptyRows(d);
      }
      const out = await this.update.session.run(feeds);
      const pick = (f: (i: number) => string): ort.Tensor[] => Array.from({ length: layers }, (_, i) => out[f(i)] as ort.Tensor);
      this.cache = { rows, k: pick(io.newK), kRot: pick(io.newKRot), v: pick(io.newV), pos: pick(io.newPos), positions };
    }
    dispose([...old.k, ...old.kRot, ...old.v, ...old.pos]);
    if (oldPending) dispose([...oldPending.k, ...oldPending.v]);
    this.pending = null;
  }

  /** A small session whose outputs all come back to the host (scores, cache reads). */
  private hostOutputSettings(): SessionSettings {
    return { provider: this.provider, threads: this.threads, allowSpinning: this.allowSpinning, gpuOutputs: () => false };
  }

  private scoreSession(reduce: 'sum' | 'max', selections: number): Promise<OwnedSession> {
    const key = `${reduce}:${selections}`;
    let session = this.scoreSessions.get(key);
    if (!session) {
      const graph = buildScoreGraph(this.dims, this.dtype, reduce, selections);
      session = createSession(graph, this.hostOutputSettings(), [SCORE_IO.scores]);
      this.scoreSessions.set(key, session);
    }
    return session;
  }

  private kept(selection: QuerySelection): KeptQueries {
    const kept = this.queries.get(selection.queriesId);
    if (!kept) throw fail(`scoreCache: no kept queries with id ${selection.queriesId} (released, or never kept)`);
    const [a, b] = selection.frames;
    if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && a < b && b <= kept.frames)) {
      throw fail(`scoreCache: frames [${a}, ${b}) of queries ${selection.queriesId} are not inside [0, ${kept.frames})`);
    }
    return kept;
  }

  async scoreCache(selections: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array> {
    this.check();
    if (selections.length === 0) throw fail('scoreCache: no query selection given');
    const { layers, dim: d, tokensPerFrame: T } = this.dims;
    const kept = selections.map((s) => this.kept(s));
    const N = this.cache.rows;
    if (N === 0) return new Float32Array(0);
    const feeds: Record<string, ort.Tensor> = {};
    for (let i = 0; i < layers; i++) {
      feeds[SCORE_IO.cacheK(i)] = this.cache.k[i];
      feeds[SCORE_IO.cachePos(i)] = this.cache.pos[i];
    }
    if (reduce === 'sum') {
      const q = new Float32Array(layers * d);
      selections.forEach((sel, s) => {
        const { frames, sums } = kept[s];
        for (let i = 0; i < layers; i++) {
          for (let f = sel.frames[0]; f < sel.frames[1]; f++) {
            const at = (i * frames + f) * d;
            for (let j = 0; j < d; j++) q[i * d + j] += sums[at + j];
          }
        }
      });
      feeds[SCORE_IO.querySum] = new ort.Tensor('float32', q, [layers, d]);
    } else {
      selections.forEach((sel, s) => {
        const all = kept[s].all;
        if (!all) throw fail(`scoreCache 'max': queries ${sel.queriesId} were kept with keepQueries 'sum'; 'max' needs keepQueries 'max'`);
        for (let i = 0; i < layers; i++) feeds[SCORE_IO.queries(s, i)] = all[i];
      });
      feeds[SCORE_IO.starts] = new ort.Tensor('int64', BigInt64Array.from(selections.map((s) => BigInt(s.frames[0] * T))), [selections.length]);
      feeds[SCORE_IO.ends] = new ort.Tensor('int64', BigInt64Array.from(selections.map((s) => BigInt(s.frames[1] * T))), [selections.length]);
    }
    const { session } = await this.scoreSession(reduce, reduce === 'sum' ? 1 : selections.length);
    const out = await session.run(feeds);
    return this.toHost(out[SCORE_IO.scores] as ort.Tensor);
  }

  async releaseQueries(queriesId: number): Promise<void> {
    this.check();
    const kept = this.queries.get(queriesId);
    if (!kept) return;
    if (kept.all) dispose(kept.all);
    this.queries.delete(queriesId);
  }

  async resetCache(): Promise<void> {
    this.check();
    dispose([...this.cache.k, ...this.cache.kRot, ...this.cache.v, ...this.cache.pos]);
    if (this.pending) dispose([...this.pending.k, ...this.pending.v]);
    this.cache = this.emptyCache();
    this.pending = null;
  }

  async readCache(): Promise<{ keys: Float32Array; values: Float32Array; positions: Float32Array; rows: number }> {
    this.check();
    const { layers, dim: d } = this.dims;
    const rows = this.cache.rows;
    const keys = new Float32Array(layers * rows * d);
    const values = new Float32Array(layers * rows * d);
    if (rows > 0) {
      const host = this.resident ? await this.readThroughSession() : { k: this.cache.k, v: this.cache.v };
      for (let i = 0; i < layers; i++) {
        keys.set(await this.toHost(host.k[i]), i * rows * d);
        values.set(await this.toHost(host.v[i]), i * rows * d);
      }
    }
    return { keys, values, positions: this.cache.positions.slice(), rows };
  }

  /** The resident cache copied to host tensors by the read graph (see cache-graphs.ts). */
  private async readThroughSession(): Promise<{ k: ort.Tensor[]; v: ort.Tensor[] }> {
    const { layers } = this.dims;
    const io = READ_IO;
    this.readSession ??= createSession(buildCacheReadGraph(this.dims, this.dtype), this.hostOutputSettings(), [
      ...Array.from({ length: layers }, (_, i) => io.keys(i)),
      ...Array.from({ length: layers }, (_, i) => io.values(i)),
    ]);
    const { session } = await this.readSession;
    const feeds: Record<string, ort.Tensor> = {};
    for (let i = 0; i < layers; i++) {
      feeds[io.cacheK(i)] = this.cache.k[i];
      feeds[io.cacheV(i)] = this.cache.v[i];
    }
    const out = await session.run(feeds);
    const pick = (f: (i: number) => string): ort.Tensor[] => Array.from({ length: layers }, (_, i) => out[f(i)] as ort.Tensor);
    return { k: pick(io.keys), v: pick(io.values) };
  }

  info(): EngineInfo {
    return {
      name: 'ort',
      provider: this.provider,
      precision: this.dtype === 'float16' ? 'fp16' : 'fp32',
      // The graph's MultiHeadAttention op, run by the provider's own kernel (WebGPU: its flash path).
      attention: `ONNX Runtime ${this.provider} MultiHeadAttention`,
      cacheRows: this.cache.rows,
      pendingRows: this.pending?.rows ?? 0,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    dispose([...this.cache.k, ...this.cache.kRot, ...this.cache.v, ...this.cache.pos]);
    if (this.pending) dispose([...this.pending.k, ...this.pending.v]);
    if (this.crossKv) dispose([...this.crossKv.k, ...this.crossKv.v]);
    for (const kept of this.queries.values()) if (kept.all) dispose(kept.all);
    this.queries.clear();
    const sessions = [this.text, this.transformer, this.update];
    for (const s of this.scoreSessions.values()) sessions.push(await s);
    if (this.readSession) sessions.push(await this.readSession);
    for (const s of sessions) await s.release();
  }
}
