/**
 * A stream's playout buffer. Frame n sits on the stream's timeline at `start + n / fps` and is due on
 * screen at its slot `base + n / fps`, where base = start + planned delay (the start-up delay fixed
 * at admission). Frames leave at the constant rate: on time, a frame is shown at its slot; late, it
 * is shown when ready and counts as a missed deadline, and the slots that follow do not move (a live
 * stream keeps its latency). Only the first frame moves the timeline: if it is late, base becomes its
 * ready time (the viewer cannot see anything earlier).
 *   latency(n) = shown(n) - (start + n / fps)     jitter(n) = |latency(n) - latency(n-1)|
 */
import { quantile } from './stats.js';
import type { Percentiles, PlannedPlayout } from './types.js';

export interface PlayoutSummary extends PlannedPlayout {
  latencies: number[];
}

export class Playout {
  private readonly frameMs: number;
  private base: number;
  /** ready[n] = when frame n was ready (finished decoding). */
  private readonly ready: number[] = [];

  constructor(
    readonly startMs: number,
    readonly plannedDelayMs: number,
    readonly fps: number,
  ) {
    this.frameMs = 1000 / fps;
    this.base = startMs + plannedDelayMs;
  }

  /** The slot of frame n: the deadline of the block that starts with it. */
  slot(n: number): number {
    return this.base + n * this.frameMs;
  }

  nominal(n: number): number {
    return this.startMs + n * this.frameMs;
  }

  /** Frames [firstFrame, firstFrame + count) became ready at `at` (blocks arrive in order). */
  blockReady(firstFrame: number, count: number, at: number): void {
    if (firstFrame !== this.ready.length) {
      throw new RangeError(`playout: block starting at frame ${firstFrame} arrived, expected frame ${this.ready.length}`);
    }
    if (firstFrame === 0 && at > this.base) this.base = at;
    for (let i = 0; i < count; i++) this.ready.push(at);
  }

  /** Frames ready so far. */
  get framesReady(): number {
    return this.ready.length;
  }

  /**
   * What a viewer saw up to `now`. `endFrame` bounds the frames that count (a stream that stopped);
   * a slot that passed with no frame ready counts as missed.
   */
  summary(now: number, endFrame = Infinity): PlayoutSummary {
    const latencies: number[] = [];
    const jitters: number[] = [];
    let lateShown = 0;
    let delivered = 0;
    let ttff: number | null = null;
    const plannedFirstSlot = this.startMs + this.plannedDelayMs;
    for (let n = 0; n < this.ready.length && n < endFrame; n++) {
      const slot = this.slot(n);
      const shown = Math.max(slot, this.ready[n]);
      if (shown > now) break;
      const due = n === 0 ? plannedFirstSlot : slot;
      if (this.ready[n] > due + 1e-6) lateShown++;
      delivered++;
      const latency = shown - this.nominal(n);
      if (n === 0) ttff = shown - this.startMs;
      if (latencies.length > 0) jitters.push(Math.abs(latency - latencies[latencies.length - 1]));
      latencies.push(latency);
    }
    let empty = 0;
    for (let n = this.ready.length; n < endFrame && this.slot(n) <= now; n++) empty++;
    const missed = lateShown + empty;
    const due = delivered + empty;
    return {
      ttffMs: ttff,
      framesDelivered: delivered,
      missedDeadlines: missed,
      missRate: due === 0 ? 0 : missed / due,
      latencyMs: percentiles(latencies),
      jitterMs: percentiles(jitters),
      latencies,
    };
  }
}

export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0 };
  return { p50: quantile(values, 0.5), p95: quantile(values, 0.95), p99: quantile(values, 0.99) };
}
