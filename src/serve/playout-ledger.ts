/**
 * A live stream's playout ledger: the one account of what its viewers were given and when, from
 * which its TTFF, latency, jitter and deadline misses are read (by viewers, /metrics and the
 * benchmarks alike; docs/serving.md, *Figures*). Pure arithmetic on times handed in by the caller,
 * so tests drive it with numbers.
 *
 * Times are ms on one monotonic clock; T = 1000 / fps. Frame n is the stream's n-th frame (its place
 * on the timeline is created + n T); it is *delivered* when its fragment is handed to the viewers.
 * - TTFF: stream created -> first frame delivered.
 * - Playout: a viewer that plays each delivered frame in order at fps. The first delivered frame is
 *   shown when delivered; each next one is due T after the previous one was shown, and is shown at
 *   max(due, delivered). Frames never delivered (lost with an encoder that died) are not waited for.
 * - Misses: playout slots in which the viewer had no new frame. A frame delivered `late` ms after it
 *   was due stalls the picture for ceil(late / T) slots (an encoder restart gap of 6 s at 4 fps is 24
 *   misses). While the next frame is overdue, the slots passed so far count already.
 *   Miss rate = misses / (frames shown + misses).
 * - Latency(n) = shown(n) - (created + n T): how far behind the stream's timeline the viewer sees
 *   frame n. Jitter = |latency(n) - latency(previous frame shown)|. Percentiles are linearly
 *   interpolated (src/util/stats.ts `quantile`) over the last RECENT_FRAMES frames shown.
 */
import { quantile, RecentSamples } from '../util/stats.js';
import type { Percentiles } from './protocol.js';

/** Lateness below this is clock noise, not a miss. */
export const MISS_TOLERANCE_MS = 1;
/** Frames whose latency and jitter the percentiles are taken over. */
export const RECENT_FRAMES = 1024;
const FPS_WINDOW_MS = 5000;

export interface PlayoutFigures {
  /** Created -> first frame delivered, ms; null until then. */
  ttffMs: number | null;
  framesDelivered: number;
  /** Frames delivered per second over the last few seconds. */
  deliveredFps: number;
  deadlineMisses: number;
  missRate: number;
  latencyMs: Percentiles;
  jitterMs: Percentiles;
}

/**
 * Told of each figure as the ledger records it (the server's /metrics counters and histograms), so
 * that what is exported is what the ledger counts.
 */
export interface PlayoutObserver {
  /** The first frame was delivered, `ttffMs` after the stream was created. */
  firstFrame(ttffMs: number): void;
  /** A frame was delivered `latenessMs` after its playout slot (0 when in time); `latencyMs` as above. */
  frame(latenessMs: number, latencyMs: number): void;
  /** `slots` playout slots passed without a new frame. */
  missed(slots: number): void;
}

/** Percentiles p50 / p95 / p99 (linearly interpolated); zeros when there are no values. */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0 };
  return { p50: quantile(values, 0.5), p95: quantile(values, 0.95), p99: quantile(values, 0.99) };
}

export class PlayoutLedger {
  private readonly frameMs: number;
  private firstDeliveredAt: number | null = null;
  /** When the last frame shown was (or will be) on screen; null before the first. */
  private shownAt: number | null = null;
  private lastFrame = -1;
  private lastLatency: number | null = null;
  private delivered = 0;
  private misses = 0;
  private endedAt: number | null = null;
  private readonly latency = new RecentSamples(RECENT_FRAMES);
  private readonly jitter = new RecentSamples(RECENT_FRAMES);
  private readonly arrivals: number[] = [];

  constructor(
    readonly createdAt: number,
    readonly fps: number,
    private readonly observer?: PlayoutObserver,
  ) {
    this.frameMs = 1000 / fps;
  }

  /** Frame `frame` was handed to the viewers at `at`. Frames come in order; a skipped index was lost. */
  frameDelivered(frame: number, at: number): void {
    if (frame <= this.lastFrame) throw new RangeError(`playout ledger: frame ${frame} delivered after frame ${this.lastFrame}`);
    this.lastFrame = frame;
    if (this.firstDeliveredAt === null) {
      this.firstDeliveredAt = at;
      this.observer?.firstFrame(at - this.createdAt);
    }
    const due = this.shownAt === null ? at : this.shownAt + this.frameMs;
    const late = at - due;
    if (late > MISS_TOLERANCE_MS) {
      const missed = Math.ceil(late / this.frameMs);
      this.misses += missed;
      this.observer?.missed(missed);
    }
    const shown = Math.max(due, at);
    this.shownAt = shown;
    const latency = shown - (this.createdAt + frame * this.frameMs);
    this.latency.push(latency);
    if (this.lastLatency !== null) this.jitter.push(Math.abs(latency - this.lastLatency));
    this.lastLatency = latency;
    this.delivered++;
    this.observer?.frame(Math.max(0, late), latency);
    this.arrivals.push(at);
    while (this.arrivals[0] < at - FPS_WINDOW_MS) this.arrivals.shift();
  }

  /** The stream stopped at `at`: from then on no frame is due. */
  end(at: number): void {
    if (this.endedAt !== null) return;
    this.endedAt = at;
    const overdue = this.overdueSlots(at);
    if (overdue > 0) this.observer?.missed(overdue);
  }

  /** Slots passed by `now` with the next frame overdue (0 when none is). */
  private overdueSlots(now: number): number {
    if (this.shownAt === null) return 0;
    const until = this.endedAt === null ? now : Math.min(now, this.endedAt);
    const late = until - (this.shownAt + this.frameMs);
    return late > MISS_TOLERANCE_MS ? Math.ceil(late / this.frameMs) : 0;
  }

  figures(now: number): PlayoutFigures {
    while (this.arrivals.length && this.arrivals[0] < now - FPS_WINDOW_MS) this.arrivals.shift();
    const span = this.firstDeliveredAt === null ? 0 : Math.min(FPS_WINDOW_MS, now - this.firstDeliveredAt);
    const misses = this.misses + this.overdueSlots(now);
    const slots = this.delivered + misses;
    return {
      ttffMs: this.firstDeliveredAt === null ? null : this.firstDeliveredAt - this.createdAt,
      framesDelivered: this.delivered,
      deliveredFps: span > 0 ? (this.arrivals.length * 1000) / Math.max(span, this.frameMs) : 0,
      deadlineMisses: misses,
      missRate: slots === 0 ? 0 : misses / slots,
      latencyMs: percentiles(this.latency.all()),
      jitterMs: percentiles(this.jitter.all()),
    };
  }
}
