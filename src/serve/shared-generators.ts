/**
 * Live streams batched in one forward (engine.maxBatch >= 2): the streams of one engine setup (one device; under
 * engine.placement replicas, one per GPU) share one generator thread (shared-generator-worker.ts), where each
 * stream's generator runs on its own engine and their forwards that are due together go out as one batched call.
 * The server's scheduler hands the streams whose blocks are due together their turns at once, so their forwards
 * meet there. Each stream stays its own: its calls, its failure, its close (which frees its engine and cache) touch
 * no other stream; the thread goes when the server closes (or when it died, for the next stream).
 *
 * With engine.maxBatch 1 the server uses SpareGenerators (generator-host.ts): one thread per stream, as before.
 */
import type { CacheConfig, Config } from '../config/schema.js';
import type { FrameBlock } from '../loop/types.js';
import { spawnWorker } from '../util/worker-url.js';
import { RpcClient } from '../util/worker-rpc.js';
import { RemoteGenerator } from './remote-generator.js';
import type { HostedGeneratorShape, SharedBatchStats, SharedGeneratorWorkerApi, TextEncoderPort } from './generator-messages.js';

/** The engine section as a key, whatever the order of its keys. */
function engineKey(config: Config): string {
  return JSON.stringify(config.engine, Object.keys(config.engine).sort());
}

/** One stream's generator in a shared thread. */
export class SharedStreamGenerator extends RemoteGenerator {
  constructor(
    private readonly worker: RpcClient<SharedGeneratorWorkerApi>,
    readonly slot: number,
  ) {
    super();
  }

  protected createRemote(config: Config, text: TextEncoderPort | undefined): Promise<HostedGeneratorShape> {
    return this.worker.call('create', [this.slot, config, text], text ? [text.port] : []);
  }

  protected nextRemote(steps: number | undefined): Promise<FrameBlock> {
    return this.worker.call('next', steps === undefined ? [this.slot] : [this.slot, steps]);
  }

  setPrompt(prompt: string): Promise<void> {
    return this.worker.call('setPrompt', [this.slot, prompt]);
  }

  protected retuneRemote(cache: CacheConfig): Promise<void> {
    return this.worker.call('retune', [this.slot, cache]);
  }

  /** Closes this stream's generator and engine in the shared thread; the other streams go on. */
  close(): Promise<void> {
    this.closing ??= this.worker.dead ? Promise.resolve() : this.worker.call('closeStream', [this.slot]).catch(() => undefined);
    return this.closing;
  }
}

/** The shared generator threads of a server, one per engine setup. */
export class SharedGenerators {
  private readonly workers = new Map<string, Promise<RpcClient<SharedGeneratorWorkerApi>>>();
  private slots = 0;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Starts the thread of the server's own engine setup and builds its first engine ahead of any stream. */
  fill(): void {
    if (this.closed) return;
    this.workerFor(this.config, true).catch((e: unknown) => this.log(`shared generator: ${(e as Error).message}`));
  }

  /** Resolves when the threads started so far are up (or failed). */
  async ready(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.catch(() => undefined)));
  }

  /** A stream's generator in the shared thread of its engine setup; rejects like createGenerator. */
  async create(config: Config): Promise<SharedStreamGenerator> {
    const worker = await this.workerFor(config, false);
    const generator = new SharedStreamGenerator(worker, ++this.slots);
    try {
      await generator.start(config);
    } catch (e) {
      await generator.close();
      throw e;
    }
    return generator;
  }

  /** Forwards per engine call over every thread so far (threads that died are not counted). */
  async batchStats(): Promise<SharedBatchStats> {
    const total: SharedBatchStats = { calls: 0, forwards: 0, largest: 0 };
    for (const w of this.workers.values()) {
      const client = await w.catch(() => null);
      const s = client && !client.dead ? await client.call('batchStats', []).catch(() => null) : null;
      if (!s) continue;
      total.calls += s.calls;
      total.forwards += s.forwards;
      total.largest = Math.max(total.largest, s.largest);
    }
    return total;
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(workers.map(async (w) => (await w.catch(() => null))?.close()));
  }

  /** The live thread of `config`'s engine setup, started (and warmed when `warm`) if there is none. */
  private workerFor(config: Config, warm: boolean): Promise<RpcClient<SharedGeneratorWorkerApi>> {
    const key = engineKey(config);
    const existing = this.workers.get(key);
    if (existing) {
      // a thread that crashed takes its streams with it; the next stream gets a new one
      return existing.then((w) => (w.dead ? this.startWorker(key, config, warm) : w), () => this.startWorker(key, config, warm));
    }
    return this.startWorker(key, config, warm);
  }

  private startWorker(key: string, config: Config, warm: boolean): Promise<RpcClient<SharedGeneratorWorkerApi>> {
    const started = (async () => {
      const { client } = await RpcClient.start<SharedGeneratorWorkerApi>(spawnWorker(import.meta.url, 'shared-generator-worker'), 'the shared generator thread');
      if (warm) {
        try {
          await client.call('warm', [config]);
        } catch (e) {
          this.log(`shared generator: building its first engine ahead failed (${(e as Error).message}); the first stream builds its own`);
        }
      }
      return client;
    })();
    this.workers.set(key, started);
    started.catch(() => {
      if (this.workers.get(key) === started) this.workers.delete(key);
    });
    return started;
  }
}
