/**
 * The generator on a thread of its own. The generator's loop is many short steps (one per engine
 * call); on the server's thread each step would wait behind whatever the thread is doing (sending
 * a fragment to 50 viewers over loopback takes ~10 ms of kernel time), and block times would grow
 * with the audience. Here it runs in a worker (generator-worker.ts) and only finished blocks cross
 * over, their frames transferred, not copied.
 *
 * Building a generator's engine (the worker's modules, the weights, the engine's sessions) takes
 * about a second on a small CPU, which every stream's first picture would wait for. `SpareGenerators`
 * keeps `serve.spareGenerators` workers with their engine built ahead (clients cannot change the
 * model or engine sections, so a spare fits any stream); a stream takes one and a new one is made.
 */
import type { CacheConfig, Config } from '../config/schema.js';
import type { FrameBlock } from '../loop/types.js';
import { isSinkstreamError } from '../errors.js';
import { spawnWorker } from '../util/worker-url.js';
import { RpcClient } from '../util/worker-rpc.js';
import { RemoteGenerator } from './remote-generator.js';
import type { GeneratorWorkerApi, HostedGeneratorShape, TextEncoderPort } from './generator-messages.js';

export class HostedGenerator extends RemoteGenerator {
  private constructor(
    private readonly worker: RpcClient<GeneratorWorkerApi>,
    private config: Config,
  ) {
    super();
  }

  /** A generator thread, started (its modules loaded) but with no engine nor generator yet. */
  static async spawn(config: Config): Promise<HostedGenerator> {
    const { client } = await RpcClient.start<GeneratorWorkerApi>(spawnWorker(import.meta.url, 'generator-worker'), "the generator's thread");
    return new HostedGenerator(client, config);
  }

  /** Builds the engine now, before the stream's own config is known (a spare). */
  async warm(): Promise<void> {
    await this.worker.call('warm', [this.config]);
  }

  override start(config: Config = this.config): Promise<void> {
    this.config = config;
    return super.start(config);
  }

  protected createRemote(config: Config, text: TextEncoderPort | undefined): Promise<HostedGeneratorShape> {
    return this.worker.call('create', [config, text], text ? [text.port] : []);
  }

  protected nextRemote(steps: number | undefined): Promise<FrameBlock> {
    return this.worker.call('next', steps === undefined ? [] : [steps]);
  }

  setPrompt(prompt: string): Promise<void> {
    return this.worker.call('setPrompt', [prompt]);
  }

  protected retuneRemote(cache: CacheConfig): Promise<void> {
    this.config = { ...this.config, cache };
    return this.worker.call('retune', [cache]);
  }

  close(): Promise<void> {
    this.closing ??= this.worker.close();
    return this.closing;
  }
}

/** Starts a generator in a worker thread; rejects like createGenerator (bad config, model, prompt). */
export async function createHostedGenerator(config: Config): Promise<HostedGenerator> {
  const generator = await HostedGenerator.spawn(config);
  try {
    await generator.start();
  } catch (e) {
    await generator.close();
    throw e;
  }
  return generator;
}

/**
 * Hosted generators whose engine is built before a stream asks for one. `create` takes a spare when
 * one is ready (else builds as createHostedGenerator does) and starts making the next spare
 * `refillDelayMs` later, so that the new stream's first blocks do not share the CPU with it.
 */
/** The same engine section, whatever the order of its keys (a flat object: sorted keys name it). */
function sameEngine(a: Config, b: Config): boolean {
  const canonical = (e: Config['engine']): string => JSON.stringify(e, Object.keys(e).sort());
  return canonical(a.engine) === canonical(b.engine);
}

export class SpareGenerators {
  private readonly spares: Array<Promise<HostedGenerator | null>> = [];
  private refill: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly count: number,
    private readonly refillDelayMs = 3000,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Spares ready or being built. */
  get size(): number {
    return this.spares.length;
  }

  /** Starts building spares up to `count`. */
  fill(): void {
    while (!this.closed && this.spares.length < this.count) this.spares.push(this.makeSpare());
  }

  /** Resolves when the spares being built are ready (or failed). */
  async ready(): Promise<void> {
    await Promise.all(this.spares);
  }

  async create(config: Config): Promise<HostedGenerator> {
    // A spare's engine was built from this.config's engine section: a stream whose engine differs (placed on
    // another GPU by engine.placement replicas) builds its own, and the spare waits for one that matches.
    if (!sameEngine(config, this.config)) return createHostedGenerator(config);
    const spare = await (this.spares.shift() ?? Promise.resolve(null));
    this.scheduleRefill();
    if (!spare) return createHostedGenerator(config);
    try {
      await spare.start(config);
      return spare;
    } catch (e) {
      await spare.close().catch(() => undefined);
      if (isSinkstreamError(e) && e.isBadInput) throw e; // the stream's own config or prompt
      return createHostedGenerator(config); // the spare itself failed: build one as if there were none
    }
  }

  /** Stops the spares. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.refill) clearTimeout(this.refill);
    const spares = this.spares.splice(0);
    await Promise.all(spares.map(async (p) => (await p)?.close()));
  }

  private scheduleRefill(): void {
    if (this.closed || this.refill || this.count === 0) return;
    this.refill = setTimeout(() => {
      this.refill = null;
      this.fill();
    }, this.refillDelayMs);
    this.refill.unref();
  }

  /** A worker with its engine built; null if that failed (the stream then builds its own and reports why). */
  private async makeSpare(): Promise<HostedGenerator | null> {
    let generator: HostedGenerator | null = null;
    try {
      generator = await HostedGenerator.spawn(this.config);
      await generator.warm();
      return generator;
    } catch (e) {
      this.log(`spare generator: ${(e as Error).message}`);
      await generator?.close();
      return null;
    }
  }
}
