/**
 * The ONNX Runtime engine (CPU or WebGPU provider) as seen from the main thread: every call is a
 * message to the engine's worker (ort-worker.ts), latents and flows travel as transferred buffers.
 *
 * Closed vs died: `close()` is asked for and idempotent; a worker that exits on its own (a crash,
 * an out-of-memory kill) fails every pending and later call with ERR_ENGINE naming the cause.
 */
import type { Worker } from 'node:worker_threads';
import { SinkstreamError } from '../../errors.js';
import { spawnWorker } from '../../util/worker-url.js';
import type { CacheUpdate, Engine, EngineInfo, EngineOptions, ForwardRequest, ForwardResult, QuerySelection } from '../types.js';
import type { SerializedError, WorkerCall, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';

function revive(e: SerializedError): SinkstreamError {
  const err = new SinkstreamError(e.code ?? 'ERR_ENGINE', e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
}

export class OrtEngine implements Engine {
  readonly name = 'ort';
  private lastInfo: EngineInfo;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing: Promise<void> | null = null;
  private died: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    info: EngineInfo,
  ) {
    this.lastInfo = info;
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    worker.on('error', (e) => this.onDeath(e));
    worker.on('exit', (code) => {
      if (!this.closing) this.onDeath(new Error(`the engine worker exited with code ${code}`));
    });
  }

  /** `layers`: run only those layers, a pipeline stage (src/engine/pipeline-engine.ts). */
  static async create(options: EngineOptions, layers?: readonly [number, number]): Promise<OrtEngine> {
    const init: WorkerInit = { config: options.config, layers };
    const worker = spawnWorker(import.meta.url, 'ort-worker', { workerData: init });
    const info = await new Promise<EngineInfo>((resolve, reject) => {
      const onMessage = (reply: WorkerReply): void => {
        if (reply.kind === 'ready') done(() => resolve(reply.info));
        else if (reply.kind === 'startFailed') done(() => reject(revive(reply.error)));
      };
      const onError = (e: Error): void => done(() => reject(new SinkstreamError('ERR_ENGINE', `the engine worker failed to start: ${e.message}`, { cause: e })));
      // The worker reports a failed start as a message, then ends; give that message a turn to
      // arrive before falling back to the bare exit code.
      const onExit = (code: number): void =>
        void setImmediate(() => done(() => reject(new SinkstreamError('ERR_ENGINE', `the engine worker exited with code ${code} while starting`))));
      let settled = false;
      const done = (then: () => void): void => {
        if (settled) return;
        settled = true;
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        then();
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).catch(async (e) => {
      await worker.terminate();
      throw e;
    });
    return new OrtEngine(worker, info);
  }

  private onReply(reply: WorkerReply): void {
    if (reply.kind !== 'result' && reply.kind !== 'error') return;
    if (reply.info) this.lastInfo = reply.info;
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.kind === 'result') waiter.resolve(reply.value);
    else waiter.reject(revive(reply.error));
  }

  private onDeath(e: Error): void {
    if (this.died) return;
    this.died = new SinkstreamError('ERR_ENGINE', `the ort engine died: ${e.message}`, { cause: e });
    for (const waiter of this.pending.values()) waiter.reject(this.died);
    this.pending.clear();
  }

  private call<T>(call: WorkerCall, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closing) return Promise.reject(new SinkstreamError('ERR_CLOSED', 'the ort engine is closed'));
    if (this.died) return Promise.reject(this.died);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const request: WorkerRequest = { id, call };
      this.worker.postMessage(request, transfer);
    });
  }

  setPrompt(context: Float32Array): Promise<void> {
    return this.call({ op: 'setPrompt', context: context.slice() });
  }

  forward(request: ForwardRequest): Promise<ForwardResult> {
    // copied so that the caller's arrays stay usable; the copy's buffer moves to the worker
    const latent = request.latent.slice();
    return this.call({ op: 'forward', request: { ...request, latent } }, [latent.buffer]);
  }

  updateCache(update: CacheUpdate): Promise<void> {
    return this.call({ op: 'updateCache', update });
  }

  scoreCache(queries: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array> {
    return this.call({ op: 'scoreCache', queries, reduce });
  }

  releaseQueries(queriesId: number): Promise<void> {
    return this.call({ op: 'releaseQueries', queriesId });
  }

  resetCache(): Promise<void> {
    return this.call({ op: 'resetCache' });
  }

  readCache(): Promise<{ keys: Float32Array; values: Float32Array; positions: Float32Array; rows: number }> {
    return this.call({ op: 'readCache' });
  }

  info(): EngineInfo {
    return { ...this.lastInfo };
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        if (!this.died) {
          const id = this.nextId++;
          await new Promise<void>((resolve) => {
            this.pending.set(id, { resolve: () => resolve(), reject: () => resolve() });
            this.worker.postMessage({ id, call: { op: 'close' } } satisfies WorkerRequest);
          });
        }
        await this.worker.terminate();
      })();
    }
    return this.closing;
  }
}

export function createOrtEngine(options: EngineOptions): Promise<Engine> {
  return OrtEngine.create(options);
}
