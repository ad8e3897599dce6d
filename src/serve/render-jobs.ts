/**
 * Render jobs: clips rendered to MP4 files by the server (POST /v1/renders), as `sinkstream render`
 * renders them offline (every block at the configured steps, as fast as the engine runs). At most
 * `maxRunning` render at once (serve.maxRenderJobs); later jobs queue, up to `maxQueued`; past that a
 * job is refused. A job's configuration is the server's with the client's `key=value` settings, of
 * generation.*, cache.* and output's encoder keys only (files, devices and the server stay the
 * operator's), validated like any config.
 *
 * Cancelling a running job stops it after the frame being written: ffmpeg finishes the file, so the
 * partial clip stays playable and downloadable (state `cancelled`, with the frames it holds). A
 * finished, failed or cancelled job, and its file, are forgotten `ttlMs` after it ended.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { parseOverride, patchConfig } from '../config/load.js';
import { SinkstreamError, isSinkstreamError } from '../errors.js';
import type { Mp4FileWriter } from '../encode/mp4-file-writer.js';
import { clipFrames, openClipFile, writeClipFrames } from '../encode/clip-writer.js';
import { realTimers, type Timers } from '../realtime/runtime-scheduler.js';
import type { CreateGenerator, LiveGenerator } from './live-stream.js';
import type { Logger } from './logger.js';
import type { OpResult } from './stream-control.js';

export type RenderJobState = 'queued' | 'running' | 'done' | 'cancelled' | 'failed';

export interface RenderRequest {
  prompt?: string;
  /** `key=value` settings over the server's configuration, as `render --set` takes them. */
  set?: string[];
  /** Length in frames, or in seconds of video (one of the two; default output.seconds). */
  frames?: number;
  seconds?: number;
}

/** What a client sees of a job (GET /v1/renders/{id}). */
export interface RenderJobInfo {
  id: string;
  state: RenderJobState;
  prompt: string;
  framesRequested: number;
  /** Frames handed to the encoder so far. */
  framesWritten: number;
  /** framesWritten / framesRequested. */
  progress: number;
  /** Jobs ahead of this one while it is queued; 0 otherwise. */
  queuePosition: number;
  width: number | null;
  height: number | null;
  fps: number;
  /** Frames the finished file holds and its size; null until the file is closed. */
  framesInFile: number | null;
  bytes: number | null;
  /** Whether GET /v1/renders/{id}/file has a playable file (done, or cancelled/failed after some frames). */
  fileReady: boolean;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** When the job and its file are forgotten; null while it is queued or running. */
  expiresAt: string | null;
}

export interface RenderJobsOptions {
  config: Config;
  createGenerator: CreateGenerator;
  /** Folder the files are written to (serve.renderDir). */
  dir: string;
  maxRunning: number;
  maxQueued: number;
  /** Longest clip a job may ask for, frames. */
  maxFrames: number;
  /** A job that ended is forgotten (and its file deleted) this long after, ms. */
  ttlMs: number;
  /** Prefix of job ids (the instance's, so that a load balancer routes by it). */
  idPrefix?: () => string;
  /** Why new jobs are refused now (the server is draining), or null. */
  refusing?: () => string | null;
  logger?: Logger;
  /** Wall clock for the times shown (default Date.now) and timers for forgetting (tests drive both). */
  now?: () => number;
  timers?: Timers;
}

/** Keys a client may set: what shapes the clip, never a file, a device or the server. */
const SETTABLE = /^(generation\.[\w.]+|cache\.[\w.]+|output\.(crf|preset|keyframeSeconds))$/;

class RenderJob {
  state: RenderJobState = 'queued';
  framesWritten = 0;
  width: number | null = null;
  height: number | null = null;
  framesInFile: number | null = null;
  bytes: number | null = null;
  error: string | null = null;
  startedAt: number | null = null;
  finishedAt: number | null = null;
  cancelRequested = false;
  forgetTimer: unknown = null;
  /** Resolves when the job has left `running` (or never ran). */
  settled: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly config: Config,
    readonly framesRequested: number,
    readonly file: string,
    readonly createdAt: number,
  ) {}
}

export class RenderJobs {
  private readonly jobs = new Map<string, RenderJob>();
  private readonly queue: RenderJob[] = [];
  private running = 0;
  private closed = false;
  private readonly now: () => number;
  private readonly timers: Timers;

  constructor(private readonly opts: RenderJobsOptions) {
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? realTimers;
  }

  /** Validates the request and queues the job, or says why not (`invalid-config`, `stream-limit` when the queue is full). */
  submit(request: RenderRequest): OpResult<RenderJobInfo> {
    const refusing = this.closed ? 'the server is shutting down' : (this.opts.refusing?.() ?? null);
    if (refusing !== null) return { ok: false, code: 'draining', message: refusing };
    let config: Config;
    try {
      config = this.configFor(request);
    } catch (e) {
      return { ok: false, code: 'invalid-config', message: (e as Error).message };
    }
    const frames = clipFrames(config, request);
    if (frames > this.opts.maxFrames) {
      return { ok: false, code: 'invalid-config', message: `${frames} frames asked; a render job may have at most ${this.opts.maxFrames} (serve.maxRenderFrames)` };
    }
    if (this.queue.length >= this.opts.maxQueued) {
      return { ok: false, code: 'stream-limit', message: `${this.queue.length} render jobs are queued already (serve.maxQueuedRenderJobs); try later` };
    }
    const id = `${this.opts.idPrefix?.() ?? ''}${randomBytes(5).toString('hex')}`;
    const job = new RenderJob(id, config, frames, path.join(path.resolve(this.opts.dir), `${id}.mp4`), this.now());
    this.jobs.set(id, job);
    this.queue.push(job);
    this.opts.logger?.info({ event: 'render-queued', render: id, frames, queued: this.queue.length }, `render ${id} queued (${frames} frames)`);
    this.pump();
    return { ok: true, value: this.info(job) };
  }

  get(id: string): OpResult<RenderJobInfo> {
    const job = this.jobs.get(id);
    return job ? { ok: true, value: this.info(job) } : this.notFound(id);
  }

  list(): RenderJobInfo[] {
    return [...this.jobs.values()].map((j) => this.info(j));
  }

  /** The finished (or partial) file of a job, when it has one. */
  file(id: string): OpResult<{ path: string; name: string }> {
    const job = this.jobs.get(id);
    if (!job) return this.notFound(id);
    if (!this.fileReady(job)) {
      return { ok: false, code: 'not-found', message: `render ${id} has no file yet (state ${job.state}, ${job.framesWritten} of ${job.framesRequested} frames)` };
    }
    return { ok: true, value: { path: job.file, name: path.basename(job.file) } };
  }

  /**
   * Cancels a job: a queued one never starts; a running one stops after the frame being written and
   * its file is finished (playable). A job that has ended is left as it is. Resolves once it has stopped.
   */
  async cancel(id: string): Promise<OpResult<RenderJobInfo>> {
    const job = this.jobs.get(id);
    if (!job) return this.notFound(id);
    if (job.state === 'queued') {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.finish(job, 'cancelled');
    } else if (job.state === 'running') {
      job.cancelRequested = true;
      await job.settled;
    }
    return { ok: true, value: this.info(job) };
  }

  /** Cancels everything (server shutdown): queued jobs never start, running ones finish their files. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) this.finish(job, 'cancelled');
    await Promise.all([...this.jobs.values()].filter((j) => j.state === 'running').map((j) => this.cancel(j.id)));
    for (const job of this.jobs.values()) this.timers.clear(job.forgetTimer);
  }

  private notFound(id: string): OpResult<never> {
    return { ok: false, code: 'not-found', message: `no render job '${id}'` };
  }

  private configFor(request: RenderRequest): Config {
    const patches: object[] = [];
    for (const assignment of request.set ?? []) {
      const key = assignment.slice(0, Math.max(0, assignment.indexOf('='))).trim();
      if (!SETTABLE.test(key)) {
        throw new SinkstreamError('ERR_CONFIG_INVALID', `set ${assignment}: only generation.*, cache.* and output.crf / preset / keyframeSeconds may be set for a render job`);
      }
      patches.push(parseOverride(assignment));
    }
    if (request.prompt !== undefined) patches.push({ generation: { prompt: request.prompt } });
    const config = patchConfig(this.opts.config, patches, 'render job settings');
    if (config.decoder.kind === 'none') throw new SinkstreamError('ERR_CONFIG_INVALID', "decoder.kind: 'none' produces no frames");
    return config;
  }

  private fileReady(job: RenderJob): boolean {
    return job.framesInFile !== null && job.framesInFile > 0;
  }

  private info(job: RenderJob): RenderJobInfo {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      id: job.id,
      state: job.state,
      prompt: job.config.generation.prompt,
      framesRequested: job.framesRequested,
      framesWritten: job.framesWritten,
      progress: job.framesWritten / job.framesRequested,
      queuePosition: job.state === 'queued' ? this.queue.indexOf(job) + 1 : 0,
      width: job.width,
      height: job.height,
      fps: job.config.generation.fps,
      framesInFile: job.framesInFile,
      bytes: job.bytes,
      fileReady: this.fileReady(job),
      error: job.error,
      createdAt: new Date(job.createdAt).toISOString(),
      startedAt: iso(job.startedAt),
      finishedAt: iso(job.finishedAt),
      expiresAt: job.finishedAt === null ? null : new Date(job.finishedAt + this.opts.ttlMs).toISOString(),
    };
  }

  private pump(): void {
    while (!this.closed && this.running < this.opts.maxRunning && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      job.state = 'running';
      job.startedAt = this.now();
      job.settled = this.run(job).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async run(job: RenderJob): Promise<void> {
    const log = this.opts.logger;
    log?.info({ event: 'render-started', render: job.id, frames: job.framesRequested }, `render ${job.id} started`);
    let generator: LiveGenerator | undefined;
    let writer: Mp4FileWriter | undefined;
    let failure: unknown;
    try {
      generator = await this.opts.createGenerator(job.config);
      job.width = generator.width;
      job.height = generator.height;
      fs.mkdirSync(path.dirname(job.file), { recursive: true });
      writer = await openClipFile(job.file, job.config, generator);
      const blocks = generator[Symbol.asyncIterator]();
      const next = async () => {
        const block = await blocks.next();
        return block.done ? null : block.value;
      };
      await writeClipFrames(writer, { next }, job.framesRequested, {
        stop: () => job.cancelRequested,
        onFrame: (written) => (job.framesWritten = written),
      });
    } catch (e) {
      failure = e;
    }
    // The file is finished whatever happened: what was written stays playable.
    const [closed, generatorClosed] = await Promise.allSettled([writer?.close(), generator?.close()]);
    if (closed.status === 'fulfilled' && closed.value) {
      job.framesInFile = closed.value.framesInFile;
      job.bytes = closed.value.bytes;
    } else if (closed.status === 'rejected') {
      failure ??= closed.reason;
    }
    if (generatorClosed.status === 'rejected') failure ??= generatorClosed.reason;
    if (failure !== undefined) {
      job.error = isSinkstreamError(failure) ? `${failure.message} [${failure.code}]` : ((failure as Error)?.message ?? String(failure));
      this.finish(job, 'failed');
    } else {
      this.finish(job, job.cancelRequested && job.framesWritten < job.framesRequested ? 'cancelled' : 'done');
    }
  }

  private finish(job: RenderJob, state: RenderJobState): void {
    job.state = state;
    job.finishedAt = this.now();
    this.opts.logger?.info(
      { event: 'render-ended', render: job.id, state, frames: job.framesWritten, framesInFile: job.framesInFile, error: job.error ?? undefined },
      `render ${job.id} ${state} (${job.framesWritten} of ${job.framesRequested} frames)`,
    );
    job.forgetTimer = this.timers.set(() => this.forget(job), this.opts.ttlMs);
  }

  private forget(job: RenderJob): void {
    this.jobs.delete(job.id);
    fs.rmSync(job.file, { force: true });
  }
}
