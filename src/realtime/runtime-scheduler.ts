/**
 * The bridge between the pure scheduler (scheduler/) and real generators, for render and serve.
 *
 * One `RuntimeScheduler` per process and engine setup: a `Scheduler` in block granularity (a job is
 * one stream's whole block, which is what `generator.next({ steps })` runs), a calibrated cost model,
 * a clock and timers (both injectable, so tests run on virtual time). Each admitted stream gets a
 * `ScheduledStream`: its loop asks `next()` for a turn, which resolves when the scheduler's plan
 * gives that stream's next block the device, at the step count its rung says; the loop runs the
 * block and reports the measured times with `done()`, which feeds `scheduler.update` and plans the
 * next job. When nothing runs, a timer wakes the scheduler when the next block is released (a
 * block's first frame's place on the stream's timeline), so generation is held to real time.
 *
 * Decisions (admissions, refusals, rung changes, streams stopped to keep the others' deadlines)
 * are kept per stream and reported through `onDecision`.
 */
import { SinkstreamError, fromSchedulerError } from '../errors.js';
import type { SchedulerConfig } from '../config/sections/scheduler.js';
import {
  createScheduler,
  monotonicClock,
  type AdmissionDecision,
  type Clock,
  CostModel,
  type Plan,
  type PlanJob,
  type Rung,
  type Scheduler,
  type StreamMetrics,
  type StreamSpec,
} from '../../scheduler/index.js';

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export type DecisionKind = 'admitted' | 'refused' | 'lowered' | 'raised' | 'stopped' | 'left';

export interface SchedulerDecision {
  /** On the scheduler's clock, ms. */
  at: number;
  kind: DecisionKind;
  streamId: string;
  message: string;
  /** Rung changes: from / to. Admissions: the starting rung (to). */
  from?: Rung;
  to?: Rung;
  /** Refusals: the scheduler's code (capacity, deadline, duplicate, no-device). */
  code?: string;
}

/** The device's turn for one block of one stream. */
export interface Turn {
  streamId: string;
  block: number;
  /** Denoising steps the scheduler's ladder chose for this block. */
  steps: number;
  /** When the block's first frame is due on screen (scheduler clock, ms). */
  deadline: number;
  readonly plan: Plan;
  readonly job: PlanJob;
}

export interface BlockTiming {
  /** When the generator started and finished the block, on the scheduler's clock. */
  startedAt: number;
  finishedAt: number;
}

export interface RuntimeSchedulerOptions {
  costModel: CostModel;
  device: string;
  /**
   * Blocks that run at once on the device (a pipeline's stages, or the GPUs of replicas: blockLanes in
   * engine-calibration.ts). Each lane is a device to the scheduler, with the calibrated device's timings; a
   * stream stays on its lane.
   */
  lanes?: number;
  /**
   * Streams whose blocks may run as one batch on a lane (engine.maxBatch, for an engine whose streams' forwards join
   * one call): the scheduler hands them their turns together and prices the batch (scheduler/batching.ts). Default 1.
   */
  maxBatch?: number;
  config: SchedulerConfig;
  clock?: Clock;
  timers?: Timers;
  onDecision?: (d: SchedulerDecision) => void;
}

export type Admission = { admitted: true; stream: ScheduledStream; decision: Extract<AdmissionDecision, { admitted: true }> } | { admitted: false; decision: Extract<AdmissionDecision, { admitted: false }> };

const DECISIONS_KEPT = 20;
/**
 * A stream's first block also pays its engine's one-time start-up (sessions' first runs, buffers):
 * its measured time is not the device's speed, so the scheduler is told it took what was predicted
 * (its playout still sees when it was really ready).
 */
const WARM_UP_BLOCKS = 1;

export class RuntimeScheduler {
  readonly scheduler: Scheduler;
  readonly device: string;
  /** The scheduler's devices: `device`, or one per lane (`device/0`, `device/1`, ...). */
  readonly laneIds: readonly string[];
  readonly clock: Clock;
  private readonly timers: Timers;
  private readonly onDecision: (d: SchedulerDecision) => void;
  private readonly streams = new Map<string, ScheduledStream>();
  /** Jobs handed out and not yet reported: a batched job ends when every one of its blocks has. */
  private readonly jobsRunning = new Map<number, RunningBlocks>();
  private timer: unknown = null;
  private pumping = false;
  private again = false;
  private closed = false;
  /** Counts of decisions by kind, for the life of the scheduler. */
  readonly decisionCounts: Record<DecisionKind, number> = { admitted: 0, refused: 0, lowered: 0, raised: 0, stopped: 0, left: 0 };
  readonly recentRefusals: SchedulerDecision[] = [];
  /** Jobs handed out and the blocks in them (a batch of B streams' blocks is one job of B), for the life of the scheduler. */
  readonly jobCounts = { jobs: 0, blocks: 0 };

  constructor(options: RuntimeSchedulerOptions) {
    this.device = options.device;
    this.clock = options.clock ?? monotonicClock;
    this.timers = options.timers ?? realTimers;
    this.onDecision = options.onDecision ?? (() => undefined);
    const lanes = options.lanes ?? 1;
    if (!Number.isInteger(lanes) || lanes < 1) throw new SinkstreamError('ERR_ARGUMENT', `scheduler lanes must be a positive integer, got ${lanes}`);
    const maxBatch = options.maxBatch ?? 1;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new SinkstreamError('ERR_ARGUMENT', `scheduler maxBatch must be a positive integer, got ${maxBatch}`);
    this.laneIds = lanes === 1 ? [options.device] : Array.from({ length: lanes }, (_, i) => `${options.device}/${i}`);
    this.scheduler = scheduled(() =>
      createScheduler({
        clock: this.clock,
        costModel: lanes === 1 ? options.costModel : laneCostModel(options.costModel, options.device, this.laneIds),
        devices: this.laneIds.map((id) => ({ id, maxBatch })),
        config: options.config,
        granularity: 'block',
      }),
    );
  }

  /**
   * Asks the scheduler to admit a stream; a refusal is an ordinary result with the reason. `lane`: the
   * lane it must go to (its engine was built for that lane's GPU after `place`); default any lane.
   */
  admit(spec: StreamSpec, lane?: string): Admission {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'the scheduler is closed');
    const now = this.clock.now();
    const decision = scheduled(() => this.scheduler.admit(spec, now, lane === undefined ? undefined : [lane]));
    if (!decision.admitted) return { admitted: false, decision: this.refused(decision, now) };
    const stream = new ScheduledStream(this, spec.id);
    this.streams.set(spec.id, stream);
    this.record({
      at: now,
      kind: 'admitted',
      streamId: spec.id,
      to: decision.rung,
      message: `admitted on ${decision.device} at ${decision.rung.steps} steps, planned delay ${decision.plannedDelayMs.toFixed(0)} ms`,
    });
    this.recordChanges(decision.changes, now);
    this.pump();
    return { admitted: true, stream, decision };
  }

  /**
   * Would the stream be admitted now? A refusal is recorded like one of `admit`'s; null: it would be
   * admitted (nothing is, until `admit`). Lets a caller refuse before setting the stream up.
   */
  check(spec: StreamSpec): Extract<AdmissionDecision, { admitted: false }> | null {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'the scheduler is closed');
    const now = this.clock.now();
    const refusal = scheduled(() => this.scheduler.check(spec, now));
    return refusal && this.refused(refusal, now);
  }

  /**
   * The lane `admit` would give the stream now (the least loaded that keeps every deadline), or the
   * refusal (recorded like `check`'s); nothing is admitted. Replicas build the stream's engine on that lane's GPU.
   */
  place(spec: StreamSpec): { lane: string } | Extract<AdmissionDecision, { admitted: false }> {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'the scheduler is closed');
    const now = this.clock.now();
    const r = scheduled(() => this.scheduler.place(spec, now));
    return 'device' in r ? { lane: r.device } : this.refused(r, now);
  }

  private refused<T extends Extract<AdmissionDecision, { admitted: false }>>(decision: T, now: number): T {
    const d: SchedulerDecision = { at: now, kind: 'refused', streamId: decision.streamId, message: decision.reason, code: decision.code };
    this.recentRefusals.push(d);
    if (this.recentRefusals.length > DECISIONS_KEPT) this.recentRefusals.shift();
    this.record(d);
    return decision;
  }

  /** Streams admitted and not yet gone. */
  get size(): number {
    return this.streams.size;
  }

  /**
   * The device's state: speed estimate (measured / predicted), busy, utilisation planned; over lanes,
   * the mean speed and utilisation (1 = every lane full), busy if any lane is, every lane's streams.
   */
  deviceState(): ReturnType<Scheduler['deviceState']> {
    const lanes = this.laneIds.map((id) => this.scheduler.deviceState(id));
    if (lanes.length === 1) return lanes[0];
    const mean = (pick: (l: (typeof lanes)[number]) => number) => lanes.reduce((s, l) => s + pick(l), 0) / lanes.length;
    return { speed: mean((l) => l.speed), busy: lanes.some((l) => l.busy), streams: lanes.flatMap((l) => l.streams), utilisation: mean((l) => l.utilisation) };
  }

  /** Stops planning; every waiting stream gets no more turns. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    for (const s of [...this.streams.values()]) s.stopped('the scheduler closed');
  }

  /** @internal One block of a job ran; the job is reported to the scheduler once all its blocks have (from the first start to the last end). */
  completed(turn: Turn, timing: BlockTiming): void {
    this.blockEnded(turn, timing.startedAt, Math.max(timing.startedAt, timing.finishedAt));
    this.pump();
  }

  private blockEnded(turn: Turn, startedAt: number, finishedAt: number): void {
    const running = this.jobsRunning.get(turn.job.id);
    if (!running || !running.waiting.delete(turn.streamId)) return;
    running.startedAt = Math.min(running.startedAt, startedAt);
    running.finishedAt = Math.max(running.finishedAt, finishedAt);
    if (running.waiting.size > 0) return;
    this.jobsRunning.delete(turn.job.id);
    this.scheduler.update(running.plan, [{ jobId: turn.job.id, startedAt: running.startedAt, finishedAt: running.finishedAt }]);
  }

  /**
   * @internal A stream left: a turn it held frees the device, and the scheduler forgets it. Returns
   * its last figures, every frame it made counted as shown at its slot (or when ready, if late).
   */
  left(stream: ScheduledStream, reason: string, held: Turn | null): StreamMetrics {
    const now = this.clock.now();
    if (this.scheduler.remove(stream.id, now)) this.record({ at: now, kind: 'left', streamId: stream.id, message: reason });
    this.streams.delete(stream.id);
    if (held) this.blockEnded(held, now, now);
    // Removed, finished or stopped: its frames are bounded, so the whole playout can be read.
    const last = this.scheduler.metrics(stream.id, Infinity);
    this.scheduler.forget(stream.id);
    this.pump();
    return last;
  }

  /** Plans what runs next, hands out turns, and sets the timer for the next release. Re-entrant calls fold into one. */
  pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.plan();
      } while (this.again && !this.closed);
    } finally {
      this.pumping = false;
    }
  }

  private plan(): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    const now = this.clock.now();
    const plan = this.scheduler.tick(now);
    this.recordChanges(plan.changes, now);
    for (const s of plan.stopped) {
      this.record({ at: now, kind: 'stopped', streamId: s.streamId, message: s.reason });
      this.streams.get(s.streamId)?.stopped(s.reason);
    }
    for (const job of plan.jobs) {
      // a batch: every block's stream gets its turn now, so that their forwards meet in one call
      this.jobsRunning.set(job.id, { plan, waiting: new Set(job.items.map((i) => i.streamId)), startedAt: Infinity, finishedAt: -Infinity });
      this.jobCounts.jobs++;
      this.jobCounts.blocks += job.items.length;
      for (const item of job.items) {
        const stream = this.streams.get(item.streamId);
        const turn: Turn = { streamId: item.streamId, block: item.block, steps: item.steps, deadline: item.deadline, plan, job };
        if (stream) stream.offer(turn);
        else {
          // The stream went away between the plan and now: its block frees the device at once.
          this.blockEnded(turn, now, now);
          this.again = true;
        }
      }
    }
    const wake = this.scheduler.nextWakeup(now);
    if (wake !== null) this.timer = this.timers.set(() => this.pump(), Math.max(0, wake - now));
  }

  private recordChanges(changes: Plan['changes'], at: number): void {
    for (const c of changes) {
      const kind: DecisionKind = c.to.steps < c.from.steps || (c.to.steps === c.from.steps && c.to.blockFrames < c.from.blockFrames) ? 'lowered' : 'raised';
      this.record({ at, kind, streamId: c.streamId, from: c.from, to: c.to, message: `${c.from.steps} -> ${c.to.steps} steps: ${c.reason}` });
    }
  }

  private record(d: SchedulerDecision): void {
    this.decisionCounts[d.kind]++;
    this.streams.get(d.streamId)?.noteDecision(d);
    this.onDecision(d);
  }
}

interface RunningBlocks {
  plan: Plan;
  /** Streams of the job whose block has not ended. */
  waiting: Set<string>;
  startedAt: number;
  finishedAt: number;
}

/** The device's timings under every lane's id (none where the cost model has no timings for it: the scheduler says so). */
function laneCostModel(model: CostModel, device: string, laneIds: readonly string[]): CostModel {
  return model.has(device) ? new CostModel(Object.fromEntries(laneIds.map((id) => [id, model.coefficients(device)]))) : new CostModel({});
}

/** One admitted stream's side of the scheduler. */
export class ScheduledStream {
  private pending: Turn | null = null;
  private held: Turn | null = null;
  private waiter: ((t: Turn | null) => void) | null = null;
  private gone = false;
  private blocksDone = 0;
  private finalMetrics: StreamMetrics | null = null;
  /** Why the scheduler stopped this stream (to keep the others' deadlines); null while it may run. */
  stopReason: string | null = null;
  readonly decisions: SchedulerDecision[] = [];

  constructor(
    private readonly owner: RuntimeScheduler,
    readonly id: string,
  ) {}

  /** The scheduler's clock: report block times on it. */
  get clock(): Clock {
    return this.owner.clock;
  }

  /** True once the stream left (or the scheduler stopped it). */
  get ended(): boolean {
    return this.gone || this.stopReason !== null;
  }

  /** The next block's turn: resolves when the plan gives it the device; null once the stream may run no more. */
  next(): Promise<Turn | null> {
    if (this.held) throw new SinkstreamError('ERR_ARGUMENT', `stream ${this.id}: next() before done() of block ${this.held.block}`);
    if (this.pending && this.stopReason === null) {
      this.held = this.pending;
      this.pending = null;
      return Promise.resolve(this.held);
    }
    if (this.gone || this.stopReason !== null || this.owner.scheduler.metrics(this.id).state !== 'running') return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = (t) => {
        this.held = t;
        resolve(t);
      };
    });
  }

  /** The block of `turn` ran from startedAt to finishedAt (the generator's own measure). */
  done(turn: Turn, timing: BlockTiming): void {
    if (this.gone) return; // it left while the block ran; the device was freed then
    if (this.held !== turn) throw new SinkstreamError('ERR_ARGUMENT', `stream ${this.id}: done() for block ${turn.block}, which is not the block it holds`);
    this.held = null;
    const warmUp = this.blocksDone++ < WARM_UP_BLOCKS;
    this.owner.completed(turn, warmUp ? { startedAt: timing.finishedAt - turn.job.predictedMs, finishedAt: timing.finishedAt } : timing);
  }

  /** The stream stops (its viewer left, it failed, or it is over). Idempotent. */
  leave(reason = 'stopped'): void {
    if (this.gone) return;
    this.gone = true;
    const held = this.held ?? this.pending;
    this.held = null;
    this.pending = null;
    this.finalMetrics = this.owner.left(this, reason, held);
    this.wake(null);
  }

  /**
   * The scheduler's figures for this stream: TTFF, latency, jitter, misses, rung; frames count once
   * their playout slot has come by `now` (Infinity: every frame made so far, as it will be shown).
   */
  metrics(now?: number): StreamMetrics {
    return this.finalMetrics ?? this.owner.scheduler.metrics(this.id, now);
  }

  /** @internal */
  offer(turn: Turn): void {
    if (this.waiter) this.wake(turn);
    else this.pending = turn;
  }

  /** @internal */
  stopped(reason: string): void {
    this.stopReason ??= reason;
    const pending = this.pending;
    this.pending = null;
    if (pending) {
      const now = this.owner.clock.now();
      this.owner.completed(pending, { startedAt: now, finishedAt: now });
    }
    if (!this.held) this.wake(null);
  }

  /** @internal */
  noteDecision(d: SchedulerDecision): void {
    this.decisions.push(d);
    if (this.decisions.length > DECISIONS_KEPT) this.decisions.shift();
  }

  private wake(t: Turn | null): void {
    const w = this.waiter;
    this.waiter = null;
    w?.(t);
  }
}

/** Runs a call into scheduler/, its argument errors turned into this project's (ERR_ARGUMENT, bad input). */
function scheduled<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw fromSchedulerError(e);
  }
}
