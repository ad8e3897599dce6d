/**
 * The block scheduler: admission, the quality ladder and the choice of each device's next forward.
 *
 * `tick(now)` returns a plain plan (which blocks of which streams run at which step on which device,
 * batched); `update(plan, results)` records what happened (steps advance, finished blocks enter
 * their stream's playout buffer, measured times correct the device's speed estimate). Decisions rest
 * on the cost model and the EDF deadline test (feasibility.ts); the ladder (ladder.ts) picks rungs;
 * the batching policy (batching.ts) says which blocks may share a forward. No I/O, no timers: time
 * comes from the arguments or the injected clock.
 */
import { SchedulerError } from './errors.js';
import type { SchedulerConfig } from './config.js';
import { batchedForwardsMs, batchingPolicy, batchSize, type BatchingPolicy } from './batching.js';
import { blockForwards, type CostModel, type ForwardItemShape } from './cost-model.js';
import { edfFeasible, type PeriodicLoad } from './feasibility.js';
import { assignRungs, rungsFrom, type LadderMember } from './ladder.js';
import { Playout } from './playout.js';
import type {
  AdmissionDecision,
  Clock,
  DeviceSpec,
  Granularity,
  JobResult,
  Plan,
  PlanItem,
  PlanJob,
  RefusalCode,
  Rung,
  RungChange,
  StoppedStream,
  StreamMetrics,
  StreamSpec,
} from './types.js';

export interface SchedulerOptions {
  clock: Clock;
  costModel: CostModel;
  devices: readonly DeviceSpec[];
  config: SchedulerConfig;
  /** Overrides `config.batching`. */
  batching?: BatchingPolicy;
  /** `forward` (default): a job is one batched forward. `block`: a job is one whole block of one stream. */
  granularity?: Granularity;
}

interface BlockState {
  index: number;
  firstFrame: number;
  latentStart: number;
  latentFrames: number;
  steps: number;
  /** Forwards done: 0..steps-1 denoising, `steps` = the clean pass is next; steps + 1 = finished. */
  step: number;
}

interface StreamState {
  spec: StreamSpec;
  device: string;
  order: number;
  admittedAt: number;
  rungs: Rung[];
  rung: number;
  plannedDelayMs: number;
  playout: Playout;
  blocks: BlockState[];
  nextBlock: number;
  nextFrame: number;
  nextLatent: number;
  state: StreamMetrics['state'];
  /** Frames that count (set when a stream stops or is removed). */
  endFrame: number;
  blocksBySteps: Record<string, number>;
}

interface DeviceState {
  spec: DeviceSpec;
  busyJob: number | null;
  /** Measured / predicted time, smoothed: 1 = as the cost model says. */
  speed: number;
  /** The speed the current ladder assignment was computed with. */
  plannedSpeed: number;
  /** When `speed` was last measured (or last decayed toward the calibration while idle). */
  speedAt: number;
}

interface RunningJob {
  job: PlanJob;
  speed: number;
}

interface DeviceTrial {
  device: string;
  feasible: boolean;
  code?: RefusalCode;
  detail: string;
  rungs?: Map<string, number>;
  plannedDelayMs?: number;
  degradation?: number;
  utilisation?: number;
}

const NEW_STREAM = '\u0000new';

export class Scheduler {
  private readonly clock: Clock;
  private readonly cost: CostModel;
  private readonly config: SchedulerConfig;
  private readonly batching: BatchingPolicy;
  readonly granularity: Granularity;
  private readonly devices = new Map<string, DeviceState>();
  private readonly streams = new Map<string, StreamState>();
  private readonly running = new Map<number, RunningJob>();
  private pendingChanges: RungChange[] = [];
  private pendingStopped: StoppedStream[] = [];
  private ticks = 0;
  private jobSeq = 0;
  private admissions = 0;

  constructor(options: SchedulerOptions) {
    this.clock = options.clock;
    this.cost = options.costModel;
    this.config = options.config;
    this.batching = options.batching ?? batchingPolicy(options.config.batching);
    this.granularity = options.granularity ?? 'forward';
    if (options.devices.length === 0) throw new SchedulerError('scheduler: no devices given; expected at least one');
    for (const spec of [...options.devices].sort((a, b) => cmp(a.id, b.id))) {
      if (this.devices.has(spec.id)) throw new SchedulerError(`scheduler: device '${spec.id}' given twice`);
      if (!this.cost.has(spec.id)) {
        throw new SchedulerError(`scheduler: the cost model has no timings for device '${spec.id}' (it has: ${this.cost.deviceIds.join(', ') || 'none'})`);
      }
      this.devices.set(spec.id, { spec: { ...spec }, busyJob: null, speed: 1, plannedSpeed: 1, speedAt: -Infinity });
    }
  }

  // ---------------------------------------------------------------- admission

  /**
   * Admits the stream if every stream, it included, can still meet its objectives; else refuses.
   * `only`: the devices it may go to (a stream whose engine was already placed on one); default every device.
   */
  admit(spec: StreamSpec, now: number = this.clock.now(), only?: readonly string[]): AdmissionDecision {
    const trial = this.trial(spec, now, only);
    if ('admitted' in trial) return trial;
    const { rungs, ok } = trial;
    const best = bestTrial(ok);
    const rung = best.rungs!.get(NEW_STREAM)!;
    const state: StreamState = {
      spec: structuredClone(spec),
      device: best.device,
      order: ++this.admissions,
      admittedAt: now,
      rungs,
      rung,
      plannedDelayMs: best.plannedDelayMs!,
      playout: new Playout(now, best.plannedDelayMs!, spec.objectives.targetFps),
      blocks: [],
      nextBlock: 0,
      nextFrame: 0,
      nextLatent: 0,
      state: 'running',
      endFrame: spec.durationFrames ?? Infinity,
      blocksBySteps: {},
    };
    const changes = this.applyRungs(best.device, best.rungs!, `stream '${spec.id}' admitted`);
    this.pendingChanges.push(...changes);
    this.streams.set(spec.id, state);
    const device = this.devices.get(best.device)!;
    device.plannedSpeed = device.speed;
    return { admitted: true, streamId: spec.id, device: best.device, rung: rungs[rung], plannedDelayMs: state.plannedDelayMs, changes };
  }

  /**
   * The admission test alone: the refusal `admit` would give now, or null if it would admit the
   * stream. Nothing is admitted (a caller can ask before paying for the stream's set-up).
   */
  check(spec: StreamSpec, now: number = this.clock.now()): Extract<AdmissionDecision, { admitted: false }> | null {
    const trial = this.trial(spec, now);
    return 'admitted' in trial ? trial : null;
  }

  /**
   * The device `admit` would choose now (the one that degrades the admitted streams least, then the best
   * rung for the newcomer, then the least used), or the refusal; nothing is admitted. Lets a runtime build
   * the stream's engine on that device before admitting it there (`admit(spec, now, [device])`).
   */
  place(spec: StreamSpec, now: number = this.clock.now()): { device: string } | Extract<AdmissionDecision, { admitted: false }> {
    const trial = this.trial(spec, now);
    return 'admitted' in trial ? trial : { device: bestTrial(trial.ok).device };
  }

  private trial(spec: StreamSpec, now: number, only?: readonly string[]): Extract<AdmissionDecision, { admitted: false }> | { rungs: Rung[]; ok: DeviceTrial[] } {
    validateSpec(spec);
    const existing = this.streams.get(spec.id);
    if (existing && (existing.state === 'running')) {
      return { admitted: false, streamId: spec.id, code: 'duplicate', reason: `stream '${spec.id}' is already admitted` };
    }
    const rungs = rungsFrom(spec.stepLadder ?? this.config.stepLadder, spec.blockFrames ?? this.config.blockFrames);
    for (const device of this.devices.values()) this.decayIdleSpeed(device, now);
    const ids = [...this.devices.keys()].filter((id) => only === undefined || only.includes(id));
    if (ids.length === 0) {
      return { admitted: false, streamId: spec.id, code: 'no-device', reason: `stream '${spec.id}': no device among ${only!.join(', ') || 'none'} (the scheduler has ${[...this.devices.keys()].join(', ')})` };
    }
    const trials = ids.map((id) => this.tryDevice(id, spec, rungs));
    const ok = trials.filter((t) => t.feasible);
    if (ok.length === 0) {
      const code: RefusalCode = trials.every((t) => t.code === 'capacity') ? 'capacity' : 'deadline';
      const objective = `${spec.objectives.targetFps} fps, TTFF ${spec.objectives.ttffMs} ms, latency ${spec.objectives.latencyMs} ms`;
      return {
        admitted: false,
        streamId: spec.id,
        code,
        reason: `no device can take stream '${spec.id}' (${objective}) while every admitted stream keeps its deadlines, even at ${describeRung(rungs[rungs.length - 1])}: ${trials.map((t) => `${t.device}: ${t.detail}`).join('; ')}`,
      };
    }
    return { rungs, ok };
  }

  /** Ends a stream (its viewer left). Frees its share of the device; the others may move up the ladder. */
  remove(streamId: string, now: number = this.clock.now()): boolean {
    const s = this.streams.get(streamId);
    if (!s || s.state !== 'running') return false;
    s.state = 'removed';
    s.endFrame = Math.min(s.endFrame, s.playout.framesReady);
    s.blocks = [];
    void now;
    this.replan(s.device, `stream '${streamId}' left`);
    return true;
  }

  /**
   * Drops what the scheduler keeps of a stream that no longer runs (its metrics), so that a
   * long-running server does not accumulate every stream it ever had. Returns false while it runs.
   */
  forget(streamId: string): boolean {
    const s = this.streams.get(streamId);
    if (!s || s.state === 'running') return false;
    this.streams.delete(streamId);
    return true;
  }

  private tryDevice(deviceId: string, spec: StreamSpec, rungs: Rung[]): DeviceTrial {
    const capacity = 1 - this.config.headroom;
    const members = this.members(deviceId, spec);
    const maxDelay = Math.min(spec.objectives.ttffMs, spec.objectives.latencyMs);
    let delay = maxDelay;
    const candidate: LadderMember = {
      id: NEW_STREAM,
      priority: spec.objectives.priority,
      order: this.admissions + 1,
      rungs,
      load: (r) => this.load(deviceId, spec, rungs[r], delay, this.sharers(deviceId, spec.model, spec)),
    };
    const all = [...members, candidate];
    const assignment = assignRungs(all, capacity);
    if (!assignment.feasible) {
      const t = assignment.test;
      return {
        device: deviceId,
        feasible: false,
        code: t.reason === 'utilisation' ? 'capacity' : 'deadline',
        detail: `${t.detail} with ${all.length} stream${all.length > 1 ? 's' : ''} at the lowest rung`,
      };
    }
    // The shortest start-up delay that still passes (the stream's latency), plus the margin.
    const loadsWith = (d: number): PeriodicLoad[] => {
      delay = d;
      return all.map((m) => m.load(assignment.rungs.get(m.id)!));
    };
    let lo = 0;
    let hi = maxDelay;
    for (let i = 0; i < 30 && hi - lo > 0.5; i++) {
      const mid = (lo + hi) / 2;
      if (edfFeasible(loadsWith(mid), capacity).feasible) hi = mid;
      else lo = mid;
    }
    const plannedDelayMs = Math.min(maxDelay, hi + this.config.marginMs);
    delay = plannedDelayMs;
    const final = edfFeasible(loadsWith(plannedDelayMs), capacity);
    let degradation = 0;
    for (const m of members) degradation += assignment.rungs.get(m.id)! - this.streams.get(m.id)!.rung;
    return {
      device: deviceId,
      feasible: true,
      detail: 'feasible',
      rungs: assignment.rungs,
      plannedDelayMs,
      degradation,
      utilisation: final.utilisation,
    };
  }

  /**
   * A device that runs no stream and no job is measured by nothing: its speed estimate decays toward
   * the calibration (1) with scheduler.idleSpeedHalfLifeSeconds, from its last measurement.
   */
  private decayIdleSpeed(device: DeviceState, now: number): void {
    if (device.speed === 1 || device.busyJob !== null || this.members(device.spec.id).length > 0) return;
    const elapsed = now - device.speedAt;
    if (!(elapsed > 0)) return;
    const halfLifeMs = this.config.idleSpeedHalfLifeSeconds * 1000;
    const kept = halfLifeMs > 0 ? 0.5 ** (elapsed / halfLifeMs) : 0;
    device.speed = 1 + (device.speed - 1) * kept;
    device.plannedSpeed = device.speed;
    device.speedAt = now;
  }

  /** Running streams of a device as ladder members (their start-up delays are fixed); `newcomer`: a stream being tried there. */
  private members(deviceId: string, newcomer?: StreamSpec): LadderMember[] {
    return [...this.streams.values()]
      .filter((s) => s.device === deviceId && s.state === 'running')
      .sort((a, b) => a.order - b.order)
      .map((s) => ({
        id: s.spec.id,
        priority: s.spec.objectives.priority,
        order: s.order,
        rungs: s.rungs,
        load: (r: number) => this.load(deviceId, s.spec, s.rungs[r], s.plannedDelayMs, this.sharers(deviceId, s.spec.model, newcomer)),
      }));
  }

  /** Running streams of `model` on a device (and the newcomer, if of that model): the streams whose blocks may share a batch. */
  private sharers(deviceId: string, model: string, newcomer?: StreamSpec): number {
    let n = newcomer?.model === model ? 1 : 0;
    for (const s of this.streams.values()) if (s.device === deviceId && s.state === 'running' && s.spec.model === model && s.spec.id !== newcomer?.id) n++;
    return n;
  }

  /**
   * A stream's periodic load on a device at a rung, with the cache full (the steady state). Whole blocks
   * (granularity 'block') on a device that batches: the stream pays its share of a batch of its model's
   * `sharers` streams (batching.ts, batchSize), and the whole batch is the unit that cannot be preempted.
   */
  private load(deviceId: string, spec: StreamSpec, rung: Rung, deadlineMs: number, sharers = 1): PeriodicLoad {
    const device = this.devices.get(deviceId)!;
    const speed = device.speed;
    const shape = blockShape(spec, rung.blockFrames, Infinity);
    const size = this.granularity === 'block' ? batchSize(sharers, device.spec.maxBatch) : 1;
    const forward = this.cost.forwardMs(deviceId, Array.from({ length: size }, () => shape)) * speed;
    const codec = (this.cost.decodeMs(deviceId, rung.blockFrames) + this.cost.encodeMs(deviceId, rung.blockFrames)) * speed;
    const forwards = blockForwards(rung.steps, spec.forwardsPerStep);
    const costMs = (forwards * forward) / size + codec;
    return {
      id: spec.id,
      periodMs: (rung.blockFrames * spec.videoFramesPerLatentFrame * 1000) / spec.objectives.targetFps,
      costMs,
      deadlineMs,
      // A whole-block job (of the whole batch) cannot be preempted between its forwards.
      longestUnitMs: this.granularity === 'block' ? forwards * forward + size * codec : (spec.forwardsPerStep ?? 1) * forward + codec,
    };
  }

  /**
   * Recomputes a device's ladder (speed changed, a stream left). The headroom is kept for admission:
   * when the running streams no longer pass with it even at their lowest rungs, they stay at the
   * lowest rungs as long as they pass on the whole device, and only past that is a stream stopped
 * (never the only one: stopping it would protect no other stream's deadlines).
   */
  private replan(deviceId: string, reason: string): void {
    const device = this.devices.get(deviceId)!;
    device.plannedSpeed = device.speed;
    for (;;) {
      const members = this.members(deviceId);
      if (members.length === 0) return;
      const assignment = assignRungs(members, 1 - this.config.headroom);
      if (assignment.feasible) {
        this.pendingChanges.push(...this.applyRungs(deviceId, assignment.rungs, reason));
        return;
      }
      const whole = assignRungs(members, 1);
      if (whole.feasible) {
        this.pendingChanges.push(...this.applyRungs(deviceId, assignment.rungs, `${reason} (no headroom left)`));
        return;
      }
      if (members.length === 1) {
        // Stopping protects the others' deadlines; with no others, the stream runs on at its lowest rung and its misses show.
        this.pendingChanges.push(...this.applyRungs(deviceId, whole.rungs, `${reason} (beyond the device even at the lowest rung: ${whole.test.detail}; the only stream runs on)`));
        return;
      }
      // Keep the others' deadlines: stop the least important stream (lowest priority, latest admitted).
      const victim = [...members].sort((a, b) => a.priority - b.priority || b.order - a.order)[0];
      const s = this.streams.get(victim.id)!;
      s.state = 'stopped';
      s.endFrame = Math.min(s.endFrame, s.playout.framesReady);
      s.blocks = [];
      this.pendingStopped.push({
        streamId: victim.id,
        reason: `${reason}: device ${deviceId} cannot keep every deadline even at the lowest rung (${whole.test.detail}); stopped the least important stream`,
      });
    }
  }

  private applyRungs(deviceId: string, rungs: ReadonlyMap<string, number>, reason: string): RungChange[] {
    const changes: RungChange[] = [];
    for (const [id, r] of rungs) {
      const s = this.streams.get(id);
      if (!s || s.rung === r) continue;
      changes.push({ streamId: id, device: deviceId, from: s.rungs[s.rung], to: s.rungs[r], reason });
      s.rung = r;
      // Blocks released but not started take the new step count (their frames are already fixed).
      for (const b of s.blocks) if (b.step === 0 && b.latentFrames === s.rungs[r].blockFrames) b.steps = stepsOfBlock(s.spec, b.index, s.rungs[r].steps);
    }
    return changes;
  }

  // ---------------------------------------------------------------- the tick

  /** Decides the next forward of every idle device. */
  tick(now: number = this.clock.now()): Plan {
    const plan: Plan = { tick: ++this.ticks, now, jobs: [], changes: this.pendingChanges, stopped: this.pendingStopped };
    this.pendingChanges = [];
    this.pendingStopped = [];
    for (const s of this.streams.values()) if (s.state === 'running') this.release(s, now);
    for (const device of this.devices.values()) {
      if (device.busyJob !== null) continue;
      const items = this.selectBatch(device, now);
      if (items.length === 0) continue;
      const job: PlanJob = {
        id: ++this.jobSeq,
        device: device.spec.id,
        items,
        decodeLatentFrames: items.filter((i) => i.kind !== 'denoise').reduce((n, i) => n + i.latentFrames, 0),
        predictedMs: this.jobMs(device, items),
      };
      device.busyJob = job.id;
      this.running.set(job.id, { job, speed: device.speed });
      plan.jobs.push(job);
    }
    return plan;
  }

  /** Creates the blocks whose first frame's place on the timeline has come. */
  private release(s: StreamState, now: number): void {
    const frameMs = 1000 / s.spec.objectives.targetFps;
    while (s.nextFrame < s.endFrame && s.admittedAt + s.nextFrame * frameMs <= now + 1e-9) {
      const rung = s.rungs[s.rung];
      const index = s.nextBlock++;
      s.blocks.push({
        index,
        firstFrame: s.nextFrame,
        latentStart: s.nextLatent,
        latentFrames: rung.blockFrames,
        steps: stepsOfBlock(s.spec, index, rung.steps),
        step: 0,
      });
      s.nextFrame += blockVideoFrames(s.spec, index, rung.blockFrames);
      s.nextLatent += rung.blockFrames;
    }
  }

  /** Earliest-deadline-first; adds more blocks of the same model while no batched block becomes late. */
  private selectBatch(device: DeviceState, now: number): PlanItem[] {
    const candidates: PlanItem[] = [];
    const priority = new Map<string, number>();
    for (const s of this.streams.values()) {
      if (s.state !== 'running' || s.device !== device.spec.id) continue;
      priority.set(s.spec.id, s.spec.objectives.priority);
      // Whole blocks run one at a time per stream, in order (the next waits for the previous).
      const runnable = this.granularity === 'block' ? s.blocks.slice(0, 1).filter((b) => b.step === 0) : this.batching.runnable(s.blocks);
      for (const b of runnable) candidates.push(this.item(s, b));
    }
    if (candidates.length === 0) return [];
    candidates.sort(
      (a, b) => a.deadline - b.deadline || priority.get(b.streamId)! - priority.get(a.streamId)! || cmp(a.streamId, b.streamId) || a.block - b.block,
    );
    if (this.granularity === 'block') return this.selectBlocks(device, candidates, now);
    const batch = [candidates[0]];
    for (const c of candidates.slice(1)) {
      if (batch.length >= device.spec.maxBatch) break;
      if (c.model !== batch[0].model) continue;
      const before = this.jobMs(device, batch);
      const after = this.jobMs(device, [...batch, c]);
      const hurts = batch.some((x) => {
        const rest = this.remainingMs(device, x);
        return now + before + rest <= x.deadline && now + after + rest > x.deadline;
      });
      if (!hurts) batch.push(c);
    }
    return batch;
  }

  /**
   * Whole blocks: the earliest deadline first, joined by other released blocks of the same model and block size
   * (their forwards meet in one call) up to the device's maxBatch, while no block in the batch becomes late.
   */
  private selectBlocks(device: DeviceState, candidates: readonly PlanItem[], now: number): PlanItem[] {
    const batch = [candidates[0]];
    for (const c of candidates.slice(1)) {
      if (batch.length >= device.spec.maxBatch) break;
      if (c.model !== batch[0].model || c.latentFrames !== batch[0].latentFrames) continue;
      const before = now + this.jobMs(device, batch);
      const after = now + this.jobMs(device, [...batch, c]);
      if (!batch.some((x) => before <= x.deadline && after > x.deadline)) batch.push(c);
    }
    return batch;
  }

  private item(s: StreamState, b: BlockState): PlanItem {
    const shape = blockShape(s.spec, b.latentFrames, b.latentStart);
    const forwardsPerStep = forwardsOfBlock(s.spec, b.index);
    return {
      streamId: s.spec.id,
      model: s.spec.model,
      block: b.index,
      step: b.step,
      steps: b.steps,
      ...(forwardsPerStep !== undefined ? { forwardsPerStep } : {}),
      kind: this.granularity === 'block' ? 'block' : b.step < b.steps ? 'denoise' : 'clean',
      latentFrames: b.latentFrames,
      firstFrame: b.firstFrame,
      queryTokens: shape.queryTokens,
      cachedTokens: shape.cachedTokens,
      deadline: s.playout.slot(b.firstFrame),
    };
  }

  /** Predicted time of a job: the batched forward, the decode of clean passes, the encode of first steps. */
  private jobMs(device: DeviceState, items: readonly PlanItem[]): number {
    const id = device.spec.id;
    if (items.length > 0 && items[0].kind === 'block') {
      // whole blocks, batched: one block alone costs CostModel.blockMs plus its encode
      let codec = 0;
      for (const i of items) codec += this.cost.decodeMs(id, i.latentFrames) + this.cost.encodeMs(id, i.latentFrames);
      return (batchedForwardsMs((xs) => this.cost.forwardMs(id, xs), items) + codec) * device.speed;
    }
    let codec = 0;
    for (const i of items) {
      if (i.kind === 'clean') codec += this.cost.decodeMs(id, i.latentFrames);
      if (i.step === 0) codec += this.cost.encodeMs(id, i.latentFrames);
    }
    // A guided denoising step is two forwards (the prompt's and the unconditional one): the second joins the items that have one.
    const forwardsOf = (i: PlanItem) => (i.kind === 'denoise' ? (i.forwardsPerStep ?? 1) : 1);
    const most = Math.max(...items.map(forwardsOf));
    let forwardMs = 0;
    for (let k = 0; k < most; k++) forwardMs += this.cost.forwardMs(id, items.filter((i) => forwardsOf(i) > k));
    return (forwardMs + codec) * device.speed;
  }

  /** Device time a block still needs after the step in `x`, run alone. */
  private remainingMs(device: DeviceState, x: PlanItem): number {
    // steps after this one, the clean pass included
    const forwardsLeft = x.step < x.steps ? blockForwards(x.steps - x.step - 1, x.forwardsPerStep) : 0;
    if (forwardsLeft <= 0) return 0;
    const id = device.spec.id;
    return (forwardsLeft * this.cost.forwardMs(id, [x]) + this.cost.decodeMs(id, x.latentFrames)) * device.speed;
  }

  // ---------------------------------------------------------------- results

  /** Records what happened to the jobs of a plan (all of them, or those finished so far). */
  update(plan: Plan, results: readonly JobResult[]): void {
    for (const result of results) {
      const job = plan.jobs.find((j) => j.id === result.jobId);
      const running = this.running.get(result.jobId);
      if (!job || !running) throw new RangeError(`scheduler.update: job ${result.jobId} is not a running job of plan ${plan.tick}`);
      this.running.delete(result.jobId);
      const device = this.devices.get(job.device)!;
      device.busyJob = null;
      const modelMs = job.predictedMs / running.speed;
      const measured = result.finishedAt - result.startedAt;
      if (modelMs > 0 && measured > 0) {
        const a = this.config.speedSmoothing;
        device.speed = (1 - a) * device.speed + a * (measured / modelMs);
        device.speedAt = result.finishedAt;
      }
      for (const item of job.items) this.advance(item, result.finishedAt);
      if (Math.abs(device.speed - device.plannedSpeed) > this.config.replanThreshold * device.plannedSpeed) {
        this.replan(device.spec.id, `device ${device.spec.id} now runs at x${device.speed.toFixed(2)} of its calibrated time`);
      }
    }
  }

  private advance(item: PlanItem, at: number): void {
    const s = this.streams.get(item.streamId);
    if (!s || s.state !== 'running') return; // stopped or removed while the job ran
    const pos = s.blocks.findIndex((b) => b.index === item.block);
    if (pos < 0) return;
    const b = s.blocks[pos];
    b.step = item.kind === 'block' ? b.steps + 1 : b.step + 1;
    if (b.step <= b.steps) return;
    s.blocks.splice(pos, 1);
    s.playout.blockReady(b.firstFrame, blockVideoFrames(s.spec, b.index, b.latentFrames), at);
    s.blocksBySteps[b.steps] = (s.blocksBySteps[b.steps] ?? 0) + 1;
    if (s.nextFrame >= s.endFrame && s.blocks.length === 0) {
      s.state = 'finished';
      this.replan(s.device, `stream '${s.spec.id}' finished`);
    }
  }

  // ---------------------------------------------------------------- questions

  /** The next time a block is released (nothing can be planned before it unless a job finishes). */
  nextWakeup(now: number = this.clock.now()): number | null {
    let next: number | null = null;
    for (const s of this.streams.values()) {
      if (s.state !== 'running' || s.nextFrame >= s.endFrame) continue;
      const t = s.admittedAt + (s.nextFrame * 1000) / s.spec.objectives.targetFps;
      const at = Math.max(t, now);
      if (next === null || at < next) next = at;
    }
    return next;
  }

  metrics(streamId: string, now: number = this.clock.now()): StreamMetrics {
    const s = this.streams.get(streamId);
    if (!s) throw new SchedulerError(`scheduler: no stream '${streamId}'`);
    const p = s.playout.summary(now, s.endFrame);
    return {
      streamId,
      device: s.state === 'running' ? s.device : null,
      state: s.state,
      rung: s.rungs[s.rung],
      plannedDelayMs: s.plannedDelayMs,
      ttffMs: p.ttffMs,
      framesDelivered: p.framesDelivered,
      missedDeadlines: p.missedDeadlines,
      missRate: p.missRate,
      latencyMs: p.latencyMs,
      jitterMs: p.jitterMs,
      blocksBySteps: { ...s.blocksBySteps },
    };
  }

  /** Per-frame latencies so far (for aggregate percentiles across streams). */
  latencies(streamId: string, now: number = this.clock.now()): number[] {
    const s = this.streams.get(streamId);
    if (!s) return [];
    return s.playout.summary(now, s.endFrame).latencies;
  }

  streamIds(): string[] {
    return [...this.streams.keys()];
  }

  deviceState(deviceId: string, now: number = this.clock.now()): { speed: number; busy: boolean; streams: string[]; utilisation: number } {
    const d = this.devices.get(deviceId);
    if (!d) throw new SchedulerError(`scheduler: no device '${deviceId}'`);
    this.decayIdleSpeed(d, now);
    const members = this.members(deviceId);
    const loads = members.map((m) => m.load(this.streams.get(m.id)!.rung));
    return {
      speed: d.speed,
      busy: d.busyJob !== null,
      streams: members.map((m) => m.id),
      utilisation: loads.reduce((u, l) => u + l.costMs / l.periodMs, 0),
    };
  }
}

/** Forwards of one denoising step of block `index` of a stream: the first block may differ (StreamSpec.openingForwardsPerStep). */
export function forwardsOfBlock(spec: Pick<StreamSpec, 'forwardsPerStep' | 'openingForwardsPerStep'>, index: number): number | undefined {
  return index === 0 && spec.openingForwardsPerStep !== undefined ? spec.openingForwardsPerStep : spec.forwardsPerStep;
}

/** Denoising steps of block `index` of a stream at a rung of `steps`: the first block may scale them (StreamSpec.openingStepScale). */
export function stepsOfBlock(spec: Pick<StreamSpec, 'openingStepScale'>, index: number, steps: number): number {
  return index === 0 && spec.openingStepScale !== undefined ? Math.max(1, Math.round(steps * spec.openingStepScale)) : steps;
}

/** Video frames of block `index` of a stream: its first block may give fewer (StreamSpec.firstBlockVideoFrames). */
export function blockVideoFrames(spec: Pick<StreamSpec, 'videoFramesPerLatentFrame' | 'firstBlockVideoFrames'>, index: number, latentFrames: number): number {
  return index === 0 && spec.firstBlockVideoFrames !== undefined ? spec.firstBlockVideoFrames : latentFrames * spec.videoFramesPerLatentFrame;
}

/** Admission's preference among devices that accept: least degradation, best rung for the newcomer, least used. */
function bestTrial(ok: DeviceTrial[]): DeviceTrial {
  return [...ok].sort((a, b) => a.degradation! - b.degradation! || a.rungs!.get(NEW_STREAM)! - b.rungs!.get(NEW_STREAM)! || a.utilisation! - b.utilisation! || cmp(a.device, b.device))[0];
}

/** Tokens of a block: its queries and the keys cached before it (bounded by the window). */
function blockShape(spec: StreamSpec, latentFrames: number, latentStart: number): ForwardItemShape {
  const cachedFrames = Math.max(0, Math.min(latentStart, spec.windowFrames - latentFrames));
  return { queryTokens: latentFrames * spec.tokensPerFrame, cachedTokens: cachedFrames * spec.tokensPerFrame };
}

function validateSpec(spec: StreamSpec): void {
  const bad = (key: string, value: unknown, expected: string): never => {
    throw new SchedulerError(`stream '${spec.id}': ${key} = ${JSON.stringify(value)}; expected ${expected}`);
  };
  if (typeof spec.id !== 'string' || spec.id.length === 0) bad('id', spec.id, 'a non-empty string');
  const o = spec.objectives;
  if (!(o.targetFps > 0)) bad('objectives.targetFps', o.targetFps, 'a positive number');
  if (!(o.latencyMs > 0)) bad('objectives.latencyMs', o.latencyMs, 'a positive number of ms');
  if (!(o.ttffMs > 0)) bad('objectives.ttffMs', o.ttffMs, 'a positive number of ms');
  if (!Number.isFinite(o.priority)) bad('objectives.priority', o.priority, 'a finite number');
  if (!(Number.isInteger(spec.tokensPerFrame) && spec.tokensPerFrame > 0)) bad('tokensPerFrame', spec.tokensPerFrame, 'a positive integer');
  if (!(Number.isInteger(spec.windowFrames) && spec.windowFrames > 0)) bad('windowFrames', spec.windowFrames, 'a positive integer');
  if (!(Number.isInteger(spec.videoFramesPerLatentFrame) && spec.videoFramesPerLatentFrame > 0)) {
    bad('videoFramesPerLatentFrame', spec.videoFramesPerLatentFrame, 'a positive integer');
  }
  if (spec.firstBlockVideoFrames !== undefined && !(Number.isInteger(spec.firstBlockVideoFrames) && spec.firstBlockVideoFrames > 0)) {
    bad('firstBlockVideoFrames', spec.firstBlockVideoFrames, 'a positive integer');
  }
  if (spec.durationFrames !== undefined && !(Number.isInteger(spec.durationFrames) && spec.durationFrames > 0)) {
    bad('durationFrames', spec.durationFrames, 'a positive integer');
  }
  if (spec.openingStepScale !== undefined && !(Number.isFinite(spec.openingStepScale) && spec.openingStepScale > 0)) {
    bad('openingStepScale', spec.openingStepScale, 'a positive number');
  }
  for (const key of ['forwardsPerStep', 'openingForwardsPerStep'] as const) {
    const v = spec[key];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) bad(key, v, 'a positive integer');
  }
}

function describeRung(r: Rung): string {
  return `${r.steps} steps, ${r.blockFrames} latent frames per block`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
