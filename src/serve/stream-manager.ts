/**
 * The server's streams: creation within serve.maxStreams and, with a scheduler, only when the block
 * scheduler admits the stream (a refusal is an ordinary result with the reason, not an exception),
 * per-stream configuration (the server's config plus the client's generation/cache overrides,
 * validated like any config), lookup and stopping.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { patchConfig } from '../config/load.js';
import { isSinkstreamError } from '../errors.js';
import { LiveStream, type CreateGenerator } from './live-stream.js';
import type { ServerMetrics } from './metrics.js';
import type { StartEncoder } from './encoder-supervisor.js';
import type { ProtocolErrorCode, StreamFigures, StreamInfo, StreamOverrides } from './protocol.js';
import type { ServeScheduling } from './serve-scheduling.js';
import type { Timers } from '../realtime/runtime-scheduler.js';
import type { Logger } from './logger.js';

export interface CreateRequest {
  prompt: string;
  overrides?: StreamOverrides;
  record?: boolean;
}

export type CreateResult = { ok: true; stream: LiveStream } | { ok: false; code: ProtocolErrorCode; message: string };

export interface StreamManagerOptions {
  config: Config;
  createGenerator: CreateGenerator;
  metrics: ServerMetrics;
  startEncoder?: StartEncoder;
  logger: Logger;
  /** The block scheduler; absent: streams run unscheduled (paced by serve.pace alone). */
  scheduling?: ServeScheduling;
  /** The streams' clock and timers (the idle rule); default: performance.now() and the real timers. */
  clock?: { now: () => number; timers: Timers };
  /** Start of every stream id: the instance's (`<serve.instanceId>-`), which a load balancer routes by. */
  idPrefix?: () => string;
}

export class StreamManager {
  private readonly streams = new Map<string, LiveStream>();
  /** Creations in progress count against the limit too. */
  private pending = 0;
  /**
   * Streams are set up one at a time: each starts a generator thread that loads the model, and
   * threads started together leave the allocator holding their peak long after they are gone. The
   * scheduler's test runs before each set-up, so a refused stream starts nothing.
   */
  private setUp: Promise<unknown> = Promise.resolve();
  /** Set by a drain or a shutdown: no new stream is admitted. */
  private refusing: string | null = null;
  private closed = false;
  private emptied: Array<() => void> = [];

  constructor(private readonly opts: StreamManagerOptions) {}

  get(id: string): LiveStream | undefined {
    return this.streams.get(id);
  }

  list(): StreamInfo[] {
    return [...this.streams.values()].map((s) => s.info());
  }

  figures(): StreamFigures[] {
    return [...this.streams.values()].map((s) => s.figures());
  }

  /** Live streams plus creations in progress: what counts against serve.maxStreams. */
  get count(): number {
    return this.streams.size + this.pending;
  }

  /** From now on creations are refused with `draining` and `message`; running streams go on. */
  refuseNew(message: string): void {
    this.refusing ??= message;
  }

  /** Resolves once no stream is live and none is being set up. */
  whenEmpty(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }

  private checkEmpty(): void {
    if (this.count > 0) return;
    for (const resolve of this.emptied.splice(0)) resolve();
  }

  /** Creates a stream, or says why not (counted by reason in /metrics and logged). */
  async create(request: CreateRequest): Promise<CreateResult> {
    const result = await this.admit(request);
    if (!result.ok) {
      this.opts.metrics.refusedStreams.inc({ reason: result.code });
      this.opts.logger.info({ event: 'stream-refused', reason: result.code, detail: result.message }, `stream refused (${result.code}): ${result.message}`);
    }
    return result;
  }

  private async admit(request: CreateRequest): Promise<CreateResult> {
    const { maxStreams } = this.opts.config.serve;
    if (this.refusing !== null) return { ok: false, code: 'draining', message: this.refusing };
    if (this.streams.size + this.pending >= maxStreams) {
      return { ok: false, code: 'stream-limit', message: `stream limit reached: ${maxStreams} live streams (serve.maxStreams); stop one first` };
    }
    let config: Config;
    try {
      config = patchConfig(this.opts.config, [request.overrides ?? {}, { generation: { prompt: request.prompt } }], 'stream overrides');
    } catch (e) {
      return { ok: false, code: 'invalid-config', message: (e as Error).message };
    }
    const id = `${this.opts.idPrefix?.() ?? ''}${randomBytes(5).toString('hex')}`;
    this.pending++;
    const createdAt = this.opts.clock?.now() ?? performance.now();
    const turn = this.setUp.then(() => this.setUpStream(id, config, request, createdAt));
    this.setUp = turn.catch(() => undefined);
    try {
      return await turn;
    } finally {
      this.pending--;
      this.checkEmpty();
    }
  }

  private async setUpStream(id: string, config: Config, request: CreateRequest, createdAt: number): Promise<CreateResult> {
    if (this.closed) return { ok: false, code: 'draining', message: 'the server is shutting down' };
    try {
      const scheduling = this.opts.scheduling;
      const runtime = scheduling ? await scheduling.prepare() : null;
      // The admission test before the generator exists; under engine.placement replicas also the GPU its engine goes on.
      const placed = scheduling && runtime ? scheduling.place(runtime, id, config) : config;
      const stream = await LiveStream.start({
        id,
        config: placed,
        createdAt,
        record: request.record ?? false,
        createGenerator: this.opts.createGenerator,
        metrics: this.opts.metrics,
        startEncoder: this.opts.startEncoder,
        logger: this.opts.logger,
        ...(this.opts.clock ? { now: this.opts.clock.now, timers: this.opts.clock.timers } : {}),
        ...(scheduling && runtime ? { admit: scheduling.admitter(runtime, id) } : {}),
      });
      if (this.closed) {
        await stream.stop('the server is shutting down');
        return { ok: false, code: 'draining', message: 'the server is shutting down' };
      }
      this.streams.set(id, stream);
      stream.once('ended', () => {
        this.streams.delete(id);
        this.checkEmpty();
      });
      this.opts.metrics.streamAdmitted();
      const { policy, window, sink } = config.cache;
      this.opts.logger.info(
        { event: 'stream-admitted', stream: id, prompt: request.prompt, record: request.record ?? false, cache: { policy, window, sink }, fps: stream.fps },
        `stream ${id} admitted`,
      );
      return { ok: true, stream };
    } catch (e) {
      this.opts.scheduling?.unplace(id);
      if (isSinkstreamError(e) && e.code === 'ERR_CAPACITY') return { ok: false, code: 'over-capacity', message: e.message };
      const bad = isSinkstreamError(e) && e.isBadInput;
      const message = isSinkstreamError(e) ? `${e.message} [${e.code}]` : (e as Error).message;
      const prompt = isSinkstreamError(e) && e.code === 'ERR_PROMPT';
      return { ok: false, code: prompt ? 'bad-prompt' : bad ? 'invalid-config' : 'stream-failed', message };
    }
  }

  /** Stops every stream (recordings finalized) and refuses new ones. */
  async stopAll(reason: string): Promise<void> {
    this.closed = true;
    this.refuseNew('the server is shutting down');
    await Promise.all([...this.streams.values()].map((s) => s.stop(reason)));
  }
}
