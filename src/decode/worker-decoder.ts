/**
 * A streaming decoder (`taehv`, `wan-vae`) run in its own worker thread (decoder-worker.ts), seen from
 * the calling thread: every call is a message, latents and frames travel as transferred buffers, so a
 * block's decode never blocks the event loop (the encoder, the server and the transformer's worker go
 * on meanwhile).
 */
import type { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';
import { SinkstreamError } from '../errors.js';
import type { Provider } from '../engine/ort/sessions.js';
import { spawnWorker } from '../util/worker-url.js';
import type { Decoder } from './decoder.js';
import type { DecoderBackend } from './backend.js';
import type { StreamingDecoderConfig } from './streaming-decoders.js';

export interface DecoderWorkerInit {
  config: StreamingDecoderConfig;
  provider: Provider;
}

export type DecoderWorkerCall = { op: 'decode'; latent: Float32Array } | { op: 'reset' } | { op: 'close' };

export interface DecoderWorkerRequest {
  id: number;
  call: DecoderWorkerCall;
}

export interface SerializedDecoderError {
  code?: ErrorCode;
  message: string;
  stack?: string;
}

export type DecoderWorkerReply =
  | { kind: 'ready'; width: number; height: number; framesPerLatentFrame: number; framesForFirstLatentFrame: number; backend: DecoderBackend }
  | { kind: 'startFailed'; error: SerializedDecoderError }
  | { kind: 'result'; id: number; frames?: Uint8Array[] }
  | { kind: 'error'; id: number; error: SerializedDecoderError };

function revive(e: SerializedDecoderError): SinkstreamError {
  const err = new SinkstreamError(e.code ?? 'ERR_ENGINE', e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

interface Pending {
  resolve: (frames: Uint8Array[] | undefined) => void;
  reject: (e: Error) => void;
}

export class WorkerDecoder implements Decoder {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing: Promise<void> | null = null;
  private died: Error | null = null;

  private constructor(
    readonly kind: 'taehv' | 'wan-vae',
    private readonly worker: Worker,
    readonly width: number,
    readonly height: number,
    readonly framesPerLatentFrame: number,
    readonly framesForFirstLatentFrame: number,
    readonly backend: DecoderBackend,
  ) {
    worker.on('message', (reply: DecoderWorkerReply) => this.onReply(reply));
    worker.on('error', (e) => this.onDeath(e));
    worker.on('exit', (code) => {
      if (!this.closing) this.onDeath(new Error(`the decoder worker exited with code ${code}`));
    });
  }

  static async start(config: StreamingDecoderConfig, provider: Provider): Promise<WorkerDecoder> {
    const kind = config.decoder.kind;
    if (kind !== 'taehv' && kind !== 'wan-vae') throw new Error(`internal: decoder.kind '${kind}' does not run in a worker`);
    const init: DecoderWorkerInit = { config, provider };
    const worker = spawnWorker(import.meta.url, 'decoder-worker', { workerData: init });
    const ready = await new Promise<Extract<DecoderWorkerReply, { kind: 'ready' }>>((resolve, reject) => {
      let settled = false;
      const done = (then: () => void): void => {
        if (settled) return;
        settled = true;
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        then();
      };
      const onMessage = (reply: DecoderWorkerReply): void => {
        if (reply.kind === 'ready') done(() => resolve(reply));
        else if (reply.kind === 'startFailed') done(() => reject(revive(reply.error)));
      };
      const onError = (e: Error): void => done(() => reject(new SinkstreamError('ERR_ENGINE', `the decoder worker failed to start: ${e.message}`, { cause: e })));
      // A failed start arrives as a message just before the exit: give it a turn first.
      const onExit = (code: number): void =>
        void setImmediate(() => done(() => reject(new SinkstreamError('ERR_ENGINE', `the decoder worker exited with code ${code} while starting`))));
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).catch(async (e) => {
      await worker.terminate();
      throw e;
    });
    return new WorkerDecoder(kind, worker, ready.width, ready.height, ready.framesPerLatentFrame, ready.framesForFirstLatentFrame, ready.backend);
  }

  private onReply(reply: DecoderWorkerReply): void {
    if (reply.kind !== 'result' && reply.kind !== 'error') return;
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.kind === 'result') waiter.resolve(reply.frames);
    else waiter.reject(revive(reply.error));
  }

  private onDeath(e: Error): void {
    if (this.died) return;
    this.died = new SinkstreamError('ERR_ENGINE', `the ${this.kind} decoder died: ${e.message}`, { cause: e });
    for (const waiter of this.pending.values()) waiter.reject(this.died);
    this.pending.clear();
  }

  private call(call: DecoderWorkerCall, transfer: ArrayBuffer[] = []): Promise<Uint8Array[] | undefined> {
    if (this.closing) return Promise.reject(new SinkstreamError('ERR_CLOSED', `the ${this.kind} decoder is closed`));
    if (this.died) return Promise.reject(this.died);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, call } satisfies DecoderWorkerRequest, transfer);
    });
  }

  async decode(latent: Float32Array): Promise<Uint8Array[]> {
    const copy = latent.slice(); // the caller keeps its latent (the generator re-uses it for the clean pass)
    return (await this.call({ op: 'decode', latent: copy }, [copy.buffer])) ?? [];
  }

  async reset(): Promise<void> {
    await this.call({ op: 'reset' });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.died) {
        const id = this.nextId++;
        await new Promise<void>((resolve) => {
          this.pending.set(id, { resolve: () => resolve(), reject: () => resolve() });
          this.worker.postMessage({ id, call: { op: 'close' } } satisfies DecoderWorkerRequest);
        });
      }
      await this.worker.terminate();
    })();
    return this.closing;
  }
}
