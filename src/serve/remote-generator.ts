/**
 * What a stream's generator looks like from the server's thread when the generator itself runs in a worker
 * (a thread of its own, generator-host.ts, or a thread shared by batched streams, shared-generators.ts): the
 * shape it reported, its last cache view, blocks on request. Subclasses say how each call reaches the worker.
 */
import type { CacheConfig, Config } from '../config/schema.js';
import type { HeldFrame } from '../cache/types.js';
import type { FrameBlock } from '../loop/types.js';
import { connectTextEncoder } from '../text/shared-text-encoder.js';
import type { LiveGenerator } from './live-stream.js';
import type { HostedGeneratorShape, TextEncoderPort } from './generator-messages.js';

export abstract class RemoteGenerator implements LiveGenerator {
  width = 0;
  height = 0;
  fps = 0;
  framesPerBlock = 0;
  private firstBlockFrames = 0;
  /** True when its engine was built before the stream asked (a spare, or a shared thread's first engine). */
  startedWarm = false;
  private lastCache: HeldFrame[] = [];
  protected closing: Promise<void> | null = null;

  /** Builds the stream's generator in the worker; `text` is the server's umT5 encoder when the config uses it. */
  protected abstract createRemote(config: Config, text: TextEncoderPort | undefined): Promise<HostedGeneratorShape>;
  protected abstract nextRemote(steps: number | undefined): Promise<FrameBlock>;
  abstract setPrompt(prompt: string): Promise<void>;
  protected abstract retuneRemote(cache: CacheConfig): Promise<void>;
  abstract close(): Promise<void>;

  async start(config: Config): Promise<void> {
    // umT5 is loaded once per server, not per stream: the stream's generator reaches it through a port of its own.
    const text = config.text.encoder === 'umt5' ? await connectTextEncoder(config) : undefined;
    const shape = await this.createRemote(config, text);
    this.width = shape.width;
    this.height = shape.height;
    this.fps = shape.fps;
    this.framesPerBlock = shape.framesPerBlock;
    this.firstBlockFrames = shape.firstBlockFrames;
    this.startedWarm = shape.warm;
  }

  /** Video frames of block `index` (a streaming decoder's first block gives fewer). */
  framesOfBlock(index: number): number {
    return index === 0 ? this.firstBlockFrames : this.framesPerBlock;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FrameBlock> {
    while (!this.closing) yield await this.next();
  }

  /** The next block; `steps` degrades it to fewer denoising steps (the scheduler's ladder). */
  async next(options: { steps?: number } = {}): Promise<FrameBlock> {
    const block = await this.nextRemote(options.steps);
    this.lastCache = block.cache;
    return block;
  }

  /** A complete cache section, validated by the stream (LiveStream); the worker's generator takes it at the next block. */
  retune(cache: CacheConfig): void {
    this.retuneRemote(cache).catch(() => undefined); // checked before it was sent
  }

  cacheView(): HeldFrame[] {
    return this.lastCache.map((h) => ({ ...h }));
  }
}
