/**
 * The generator on a thread of its own. The generator's loop is many short steps (one per engine
 * call); on the server's thread each step would wait behind whatever the thread is doing (sending
 * a fragment to 50 viewers over loopback takes ~10 ms of kernel time), and block times would grow
 * with the audience. Here it runs in a worker (generator-worker.ts) and only finished blocks cross
 * over, their frames transferred, not copied.
 */
import type { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import type { HeldFrame } from '../cache/types.js';
import type { FrameBlock } from '../loop/types.js';
import { validateConfig } from '../config/load.js';
import { SinkstreamError, type ErrorCode } from '../errors.js';
import { spawnWorker } from '../util/worker-url.js';
import type { LiveGenerator } from './live-stream.js';
import type { HostReply, HostRequest, SerializedError } from './generator-messages.js';

type Pending = { resolve: (r: HostReply) => void; reject: (e: Error) => void };
type Request = HostRequest extends infer R ? (R extends HostRequest ? Omit<R, 'id'> : never) : never;

function revive(e: SerializedError): Error {
  return e.code ? new SinkstreamError(e.code as ErrorCode, e.message) : Object.assign(new Error(e.message), { name: e.name });
}

class HostedGenerator implements LiveGenerator {
  width = 0;
  height = 0;
  fps = 0;
  framesPerBlock = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private lastCache: HeldFrame[] = [];
  private dead: Error | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly worker: Worker,
    private config: Config,
  ) {
    worker.on('message', (r: HostReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.type === 'error') p.reject(revive(r.error));
      else p.resolve(r);
    });
    const fail = (e: Error) => {
      this.dead = new SinkstreamError('ERR_ENGINE', `the generator's thread stopped: ${e.message}`, { cause: e });
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  request(message: Request): Promise<HostReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id } as HostRequest);
    });
  }

  async start(): Promise<void> {
    const r = await this.request({ type: 'create', config: this.config });
    if (r.type !== 'ready') throw new SinkstreamError('ERR_ENGINE', `generator worker: unexpected reply ${r.type}`);
    this.width = r.width;
    this.height = r.height;
    this.fps = r.fps;
    this.framesPerBlock = r.framesPerBlock;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FrameBlock> {
    while (!this.closing) yield await this.next();
  }

  /** The next block; `steps` degrades it to fewer denoising steps (the scheduler's ladder). */
  async next(options: { steps?: number } = {}): Promise<FrameBlock> {
    const r = await this.request(options.steps === undefined ? { type: 'next' } : { type: 'next', steps: options.steps });
    if (r.type !== 'block') throw new SinkstreamError('ERR_ENGINE', `generator worker: unexpected reply ${r.type}`);
    this.lastCache = r.block.cache;
    return r.block;
  }

  async setPrompt(prompt: string): Promise<void> {
    await this.request({ type: 'prompt', prompt });
  }

  /** Validated here, synchronously (ERR_CONFIG_INVALID), then handed to the worker for the next block. */
  retune(cache: Partial<Config['cache']>): void {
    const merged = validateConfig({ ...this.config, cache: { ...this.config.cache, ...cache } }, 'cache retune');
    this.config = merged;
    this.request({ type: 'retune', cache }).catch(() => undefined); // the same check ran above
  }

  cacheView(): HeldFrame[] {
    return this.lastCache.map((h) => ({ ...h }));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.request({ type: 'close' }).catch(() => undefined);
      await this.worker.terminate();
    })();
    return this.closing;
  }
}

/** Starts a generator in a worker thread; rejects like createGenerator (bad config, model, prompt). */
export async function createHostedGenerator(config: Config): Promise<LiveGenerator> {
  const worker = spawnWorker(import.meta.url, 'generator-worker');
  const generator = new HostedGenerator(worker, config);
  try {
    await generator.start();
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  return generator;
}
