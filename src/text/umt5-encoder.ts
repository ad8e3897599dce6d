/**
 * The umT5 text encoder as the generator sees it: prompts go to the encoder's own thread
 * (umt5-worker.ts) and their contexts come back as transferred buffers, so encoding a prompt never
 * stalls the thread that runs blocks. Requests are answered in order.
 */
import type { Worker } from 'node:worker_threads';
import { SinkstreamError, type ErrorCode } from '../errors.js';
import { spawnWorker } from '../util/worker-url.js';
import type { PromptEncoder } from './prompt-encoder.js';
import type { Umt5WorkerInit, Umt5WorkerReply, WorkerError } from './umt5-messages.js';

function revive(e: WorkerError): SinkstreamError {
  return new SinkstreamError((e.code as ErrorCode | undefined) ?? 'ERR_ENGINE', e.message);
}

interface Pending {
  resolve: (context: Float32Array) => void;
  reject: (e: Error) => void;
}

export class Umt5PromptEncoder implements PromptEncoder {
  readonly kind = 'umt5' as const;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private died: Error | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly textLen: number,
    readonly textDim: number,
  ) {
    worker.on('message', (reply: Umt5WorkerReply) => {
      if (reply.kind !== 'context' && reply.kind !== 'error') return;
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.kind === 'context') p.resolve(reply.context);
      else p.reject(revive(reply.error));
    });
    const fail = (e: Error): void => {
      if (this.closing) return;
      this.died = new SinkstreamError('ERR_ENGINE', `the umT5 encoder's thread stopped: ${e.message}`, { cause: e });
      for (const p of this.pending.values()) p.reject(this.died);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  /** Starts the encoder's thread; resolves once weights, tokenizer and session are ready. */
  static async start(init: Umt5WorkerInit): Promise<Umt5PromptEncoder> {
    const worker = spawnWorker(import.meta.url, 'umt5-worker', { workerData: init });
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const done = (then: () => void): void => {
        if (settled) return;
        settled = true;
        worker.off('message', onMessage);
        then();
      };
      const onMessage = (reply: Umt5WorkerReply): void => {
        if (reply.kind === 'ready') done(resolve);
        else if (reply.kind === 'startFailed') done(() => reject(revive(reply.error)));
      };
      worker.on('message', onMessage);
      worker.once('error', (e) => done(() => reject(new SinkstreamError('ERR_ENGINE', `the umT5 encoder's thread failed to start: ${e.message}`, { cause: e }))));
      // A failed start is reported as a message first; let it arrive before the bare exit code.
      worker.once('exit', (code) => setImmediate(() => done(() => reject(new SinkstreamError('ERR_ENGINE', `the umT5 encoder's thread exited with code ${code} while starting`)))));
    });
    return new Umt5PromptEncoder(worker, init.textLen, init.text.arch.dim);
  }

  encode(prompt: string): Promise<Float32Array> {
    if (this.closing) return Promise.reject(new SinkstreamError('ERR_CLOSED', 'the umT5 encoder is closed'));
    if (this.died) return Promise.reject(this.died);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ kind: 'encode', id, prompt });
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.died) {
        await this.worker.terminate();
        return;
      }
      const closed = new Promise<void>((resolve) => {
        this.worker.on('message', (r: Umt5WorkerReply) => r.kind === 'closed' && resolve());
        this.worker.once('exit', () => resolve());
      });
      this.worker.postMessage({ kind: 'close' });
      await closed;
      await this.worker.terminate();
      const gone = new SinkstreamError('ERR_CLOSED', 'the umT5 encoder was closed');
      for (const p of this.pending.values()) p.reject(gone);
      this.pending.clear();
    })();
    return this.closing;
  }
}
