/**
 * Several streams' forwards joined into batched engine calls (engine.maxBatch): each stream's engine is wrapped as a
 * member; a member's forward waits in the batcher until the streams' forwards that are due together have come in, and
 * they go to the engines as one call (forwardTogether: the native engine's forwardBatch, else each engine's forward).
 *
 * Due together: forwards of the same block shape and batch key issued while no member has another engine call
 * (a cache update, scores, a prompt) in flight, which is what the stream would issue its next forward after. Pending
 * forwards are issued when every member has one, when a group reaches maxBatch, or else once a turn of the event loop
 * has passed with no member's other call in flight. A member's calls reach its engine in the order it made them.
 */
import { forwardTogether } from './batch.js';
import type { CacheUpdate, Engine, EngineInfo, ForwardRequest, ForwardResult, QuerySelection } from './types.js';

interface PendingForward {
  member: BatchMember;
  request: ForwardRequest;
  key: string;
  resolve: (result: ForwardResult) => void;
  reject: (error: unknown) => void;
}

/** Forwards per engine call so far. */
export interface BatcherStats {
  /** Engine calls issued (a batched call counts once). */
  calls: number;
  forwards: number;
  /** The largest number of forwards in one call. */
  largest: number;
}

export class ForwardBatcher {
  private readonly members = new Set<BatchMember>();
  private pending: PendingForward[] = [];
  private checkScheduled = false;
  /** Members' engine calls other than forwards, started and not settled. */
  private othersInFlight = 0;
  private readonly counts: BatcherStats = { calls: 0, forwards: 0, largest: 0 };

  /** `schedule` runs a function on a later turn of the event loop (tests pass their own). */
  constructor(
    readonly maxBatch: number,
    private readonly schedule: (fn: () => void) => void = (fn) => void setImmediate(fn),
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch ${maxBatch}: expected an integer >= 1`);
  }

  /** `engine` with its forwards going through this batcher (every other call straight to it). Closing it leaves. */
  member(engine: Engine): Engine {
    const m = new BatchMember(this, engine);
    this.members.add(m);
    return m;
  }

  stats(): BatcherStats {
    return { ...this.counts };
  }

  /** @internal */
  submit(member: BatchMember, request: ForwardRequest): Promise<ForwardResult> {
    return new Promise<ForwardResult>((resolve, reject) => {
      const shape = `${request.timesteps.length}x${request.latent.length}`;
      const key = member.engine.batchKey ? `${member.engine.batchKey}|${shape}` : `alone ${member.id}`;
      this.pending.push({ member, request, key, resolve, reject });
      this.issueReady();
    });
  }

  /** @internal A member's other engine call started (true) or settled (false). */
  otherCall(started: boolean): void {
    this.othersInFlight += started ? 1 : -1;
    if (!started && this.pending.length > 0) this.scheduleCheck();
  }

  /** @internal */
  leave(member: BatchMember): void {
    this.members.delete(member);
    if (this.pending.length > 0) this.issueReady();
  }

  /** Issues full groups now, and everything when every member has a forward waiting; else checks on a later turn. */
  private issueReady(): void {
    const waiting = new Set(this.pending.map((p) => p.member));
    if ([...this.members].every((m) => waiting.has(m))) {
      this.issue(this.pending);
      return;
    }
    for (const group of this.groups(this.pending)) if (group.length >= this.maxBatch) this.issue(group.slice(0, this.maxBatch));
    if (this.pending.length > 0) this.scheduleCheck();
  }

  private scheduleCheck(): void {
    if (this.checkScheduled) return;
    this.checkScheduled = true;
    this.schedule(() => {
      this.checkScheduled = false;
      // a member in a cache update (or the like) issues its next forward when that settles: wait for it
      if (this.othersInFlight === 0 && this.pending.length > 0) this.issue(this.pending);
    });
  }

  private groups(list: PendingForward[]): PendingForward[][] {
    const byKey = new Map<string, PendingForward[]>();
    for (const p of list) {
      const g = byKey.get(p.key);
      if (g) g.push(p);
      else byKey.set(p.key, [p]);
    }
    return [...byKey.values()];
  }

  /** Takes `list` out of the pending forwards and issues it, in calls of one group each, up to maxBatch forwards. */
  private issue(list: PendingForward[]): void {
    const taken = new Set(list);
    this.pending = this.pending.filter((p) => !taken.has(p));
    for (const group of this.groups(list)) {
      for (let i = 0; i < group.length; i += this.maxBatch) {
        const call = group.slice(i, i + this.maxBatch);
        this.counts.calls++;
        this.counts.forwards += call.length;
        this.counts.largest = Math.max(this.counts.largest, call.length);
        let results: Promise<ForwardResult[]>;
        try {
          results = forwardTogether(call.map((p) => ({ engine: p.member.engine, request: p.request })));
        } catch (e) {
          results = Promise.reject(e);
        }
        for (const p of call) p.member.issued();
        results.then(
          (r) => call.forEach((p, j) => p.resolve(r[j])),
          (e: unknown) => call.forEach((p) => p.reject(e)),
        );
      }
    }
  }
}

let membersCreated = 0;

/** One stream's engine seen through the batcher. */
class BatchMember implements Engine {
  readonly id = ++membersCreated;
  /** Forwards handed to the batcher and not yet issued to the engine. */
  private waiting = 0;
  /** Settles when the member's waiting forwards have all been issued (null: none waiting). */
  private drained: { promise: Promise<void>; resolve: () => void } | null = null;
  private closed = false;

  constructor(
    private readonly batcher: ForwardBatcher,
    readonly engine: Engine,
  ) {}

  get name(): string {
    return this.engine.name;
  }

  forward(request: ForwardRequest): Promise<ForwardResult> {
    // one forward of a stream waits in the batcher at a time; a later one after the earlier is issued
    if (this.drained) return this.drained.promise.then(() => this.forward(request));
    this.waiting++;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.drained = { promise, resolve };
    return this.batcher.submit(this, request);
  }

  /** @internal The batcher handed one of this member's forwards to the engine. */
  issued(): void {
    this.waiting--;
    if (this.waiting === 0 && this.drained) {
      const { resolve } = this.drained;
      this.drained = null;
      resolve();
    }
  }

  /** Another engine call, after this member's forwards waiting in the batcher (so the engine sees them in order). */
  private other<T>(op: () => Promise<T>): Promise<T> {
    const start = (): Promise<T> => {
      this.batcher.otherCall(true);
      let p: Promise<T>;
      try {
        p = op();
      } catch (e) {
        p = Promise.reject(e);
      }
      return p.finally(() => this.batcher.otherCall(false));
    };
    return this.drained ? this.drained.promise.then(start) : start();
  }

  setPrompt(context: Float32Array): Promise<void> {
    return this.other(() => this.engine.setPrompt(context));
  }

  updateCache(update: CacheUpdate): Promise<void> {
    return this.other(() => this.engine.updateCache(update));
  }

  scoreCache(queries: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array> {
    return this.other(() => this.engine.scoreCache(queries, reduce));
  }

  releaseQueries(queriesId: number): Promise<void> {
    return this.other(() => this.engine.releaseQueries(queriesId));
  }

  resetCache(): Promise<void> {
    return this.other(() => this.engine.resetCache());
  }

  readCache(): Promise<{ keys: Float32Array; values: Float32Array; positions: Float32Array; rows: number }> {
    return this.other(() => this.engine.readCache());
  }

  info(): EngineInfo {
    return this.engine.info();
  }

  /** Leaves the batcher and closes the engine (after this member's waiting forwards). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.drained) await this.drained.promise;
    this.batcher.leave(this);
    await this.engine.close();
  }
}
