/**
 * The ONNX Runtime engine (CPU or WebGPU provider) as seen from the main thread: every call is a
 * message to the engine's worker (ort-worker.ts), latents and flows travel as transferred buffers.
 *
 * Closed vs died: `close()` is asked for and idempotent; a worker that exits on its own (a crash,
 * an out-of-memory kill) fails every pending and later call with ERR_ENGINE naming the cause.
 */
import { spawnWorker } from '../../util/worker-url.js';
import { RpcClient } from '../../util/worker-rpc.js';
import type { CacheUpdate, Engine, EngineInfo, EngineOptions, ForwardRequest, ForwardResult, QuerySelection } from '../types.js';
import type { OrtWorkerApi, OrtWorkerReady, WorkerInit } from './protocol.js';

export class OrtEngine implements Engine {
  readonly name = 'ort';
  private lastInfo: EngineInfo;

  private constructor(
    private readonly worker: RpcClient<OrtWorkerApi>,
    info: EngineInfo,
  ) {
    this.lastInfo = info;
    worker.on('info', (next) => (this.lastInfo = next as EngineInfo));
  }

  /** `layers`: run only those layers, a pipeline stage (src/engine/pipeline-engine.ts). */
  static async create(options: EngineOptions, layers?: readonly [number, number]): Promise<OrtEngine> {
    const init: WorkerInit = { config: options.config, layers };
    const worker = spawnWorker(import.meta.url, 'ort-worker', { workerData: init });
    const { client, ready } = await RpcClient.start<OrtWorkerApi, OrtWorkerReady>(worker, 'the ort engine');
    return new OrtEngine(client, ready);
  }

  setPrompt(context: Float32Array): Promise<void> {
    return this.worker.call('setPrompt', [context.slice()]);
  }

  forward(request: ForwardRequest): Promise<ForwardResult> {
    // copied so that the caller's arrays stay usable; the copy's buffer moves to the worker
    const latent = request.latent.slice();
    return this.worker.call('forward', [{ ...request, latent }], [latent.buffer]);
  }

  updateCache(update: CacheUpdate): Promise<void> {
    return this.worker.call('updateCache', [update]);
  }

  scoreCache(queries: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array> {
    return this.worker.call('scoreCache', [queries, reduce]);
  }

  releaseQueries(queriesId: number): Promise<void> {
    return this.worker.call('releaseQueries', [queriesId]);
  }

  resetCache(): Promise<void> {
    return this.worker.call('resetCache', []);
  }

  readCache(): Promise<{ keys: Float32Array; values: Float32Array; positions: Float32Array; rows: number }> {
    return this.worker.call('readCache', []);
  }

  info(): EngineInfo {
    return { ...this.lastInfo };
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}

export function createOrtEngine(options: EngineOptions): Promise<Engine> {
  return OrtEngine.create(options);
}
