/**
 * The umT5 text encoder as the generator sees it: prompts go to the encoder's own thread
 * (umt5-worker.ts) and their contexts come back as transferred buffers, so encoding a prompt never
 * stalls the thread that runs blocks. Requests are answered in order.
 */
import { spawnWorker } from '../util/worker-url.js';
import { RpcClient } from '../util/worker-rpc.js';
import type { PromptEncoder } from './prompt-encoder.js';
import type { Umt5WorkerApi, Umt5WorkerInit } from './umt5-messages.js';

export class Umt5PromptEncoder implements PromptEncoder {
  readonly kind = 'umt5' as const;

  private constructor(
    private readonly worker: RpcClient<Umt5WorkerApi>,
    readonly textLen: number,
    readonly textDim: number,
  ) {}

  /** Starts the encoder's thread; resolves once weights, tokenizer and session are ready. */
  static async start(init: Umt5WorkerInit): Promise<Umt5PromptEncoder> {
    const { client } = await RpcClient.start<Umt5WorkerApi>(spawnWorker(import.meta.url, 'umt5-worker', { workerData: init }), 'the umT5 encoder');
    return new Umt5PromptEncoder(client, init.textLen, init.text.arch.dim);
  }

  encode(prompt: string): Promise<Float32Array> {
    return this.worker.call('encode', [prompt]);
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
