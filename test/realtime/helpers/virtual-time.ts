/**
 * Virtual time for the runtime scheduler: timers that fire only when the test says, and a fake
 * device whose blocks "take" (steps + 1) forwards plus a decode, scaled by a slowdown the test
 * controls, advancing the virtual clock instead of sleeping. Deterministic: no real time involved.
 */
import { VirtualClock } from '../../../scheduler/clock.js';
import { CostModel, type DeviceCoefficients } from '../../../scheduler/cost-model.js';
import type { SchedulerConfig } from '../../../src/config/sections/scheduler.js';
import { coefficients, config, stream } from '../../scheduler/helpers/drive.js';
import type { StreamSpec } from '../../../scheduler/types.js';
import type { Timers } from '../../../src/realtime/runtime-scheduler.js';
import type { ScheduledStream } from '../../../src/realtime/runtime-scheduler.js';
import type { FrameBlock } from '../../../src/loop/types.js';

export class ManualTimers implements Timers {
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  constructor(private readonly clock: VirtualClock) {}
  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.clock.now() + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Moves the clock to the earliest timer (if later than now) and fires it; false when none is set. */
  fireNext(): boolean {
    let next: [number, { at: number; fn: () => void }] | undefined;
    for (const e of this.pending) if (!next || e[1].at < next[1].at) next = e;
    if (!next) return false;
    this.pending.delete(next[0]);
    if (next[1].at > this.clock.now()) this.clock.set(next[1].at);
    next[1].fn();
    return true;
  }
}

/** Every forward 10 ms, decode free: a block at s steps takes (s + 1) * 10 ms. */
export function costModel(device = 'dev', partial: Partial<DeviceCoefficients> = {}): CostModel {
  return new CostModel({ [device]: coefficients(partial) });
}

/** The scheduler's defaults with a 20 ms margin (as the scheduler's own tests). */
export function schedulerConfig(overrides: Record<string, unknown> = {}): SchedulerConfig {
  return config(overrides);
}

/** 3-frame blocks of 1-token frames at 30 fps: one block every 100 ms, steps 4 -> 3 -> 2. */
export function spec(id: string, o: { frames?: number; fps?: number; priority?: number } = {}): StreamSpec {
  return { ...stream(id, o), stepLadder: [4, 3, 2], blockFrames: [3] };
}

/** A generator on the virtual clock: next({ steps }) advances it by the block's modelled time. */
export class VirtualGenerator {
  readonly steps: number[] = [];
  slowdown = 1;
  constructor(
    private readonly clock: VirtualClock,
    readonly framesPerBlock = 3,
    private readonly forwardMs = 10,
  ) {}
  async next(options: { steps?: number } = {}): Promise<FrameBlock> {
    const steps = options.steps ?? 4;
    const ms = (steps + 1) * this.forwardMs * this.slowdown;
    // A real block takes a turn of the event loop at least; so must this one, or a stream that is
    // always behind would run in one endless chain of promise callbacks.
    await new Promise<void>((r) => setImmediate(r));
    this.clock.advance(ms);
    const index = this.steps.length;
    this.steps.push(steps);
    return {
      index,
      firstFrame: index * this.framesPerBlock,
      width: 1,
      height: 1,
      frames: Array.from({ length: this.framesPerBlock }, () => new Uint8Array(3)),
      steps,
      timings: { totalMs: ms, engineMs: ms, decodeMs: 0 },
      cache: [],
      queryPositions: [],
    };
  }
}

/** Lets every pending promise callback run (the streams' loops take their turns). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Runs the streams' loops until `until` on the virtual clock: whenever nothing is runnable, the
 * clock jumps to the next timer (the next block's release).
 */
export async function runUntil(clock: VirtualClock, timers: ManualTimers, until: number): Promise<void> {
  for (;;) {
    await settle();
    if (clock.now() >= until) return;
    if (!timers.fireNext()) return;
  }
}

export type Loop = { blocks: FrameBlock[]; done: Promise<void> };

/** A stream's loop: next turn, run the block at the turn's steps, report, again. */
export function streamLoop(stream: ScheduledStream, generator: VirtualGenerator, run: (s: ScheduledStream, g: VirtualGenerator) => Promise<{ block: FrameBlock } | null>): Loop {
  const blocks: FrameBlock[] = [];
  const done = (async () => {
    for (;;) {
      const r = await run(stream, generator);
      if (!r) return;
      blocks.push(r.block);
    }
  })();
  return { blocks, done };
}
