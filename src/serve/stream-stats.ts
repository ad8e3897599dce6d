/**
 * The service-level figures of one live stream (SERVING.md), from block arrivals alone: pure
 * arithmetic on timestamps handed in by the caller, so tests drive it with numbers.
 *
 * Definitions (times in ms on one monotonic clock):
 * - TTFF: stream created -> first fragment ready for viewers (first frame encoded). `ttfg` is the
 *   same up to the first frame out of the generator.
 * - latency(n): the start of the block that holds frame n -> the frame is ready (out of the
 *   generator). Frames of one block share it.
 * - jitter(n) = |latency(n) - latency(n-1)| (SERVING.md).
 * - deadline: playout runs at the target fps from the first frame; frame n is due one frame period
 *   after frame n-1 was played, and is played at max(due, ready). A frame ready after its due time
 *   is a miss (the player stalls; the schedule then continues from the late frame).
 */
import type { HeldFrame } from '../cache/types.js';
import type { CacheSlotView, Percentiles, StreamFigures } from './protocol.js';

export interface BlockArrival {
  /** When the server asked the generator for this block. */
  startedAt: number;
  /** When the block came out of the generator. */
  readyAt: number;
  /** Video frames in the block. */
  frames: number;
  /** The generator's own measure of the block's wall time, ms. */
  totalMs: number;
  cache: readonly HeldFrame[];
}

/** What one block added, for exporters that observe per-frame samples. */
export interface BlockSamples {
  latencyMs: number[];
  jitterMs: number[];
  misses: number;
}

/** The figures this class computes: a stream's figures without the delivery and scheduler parts. */
export type StatsSnapshot = Omit<StreamFigures, 'stream' | 'viewers' | 'skippedFragments' | 'droppedViewers' | 'encoderRestarts' | 'scheduler'>;

/** A fixed-size ring of recent samples. */
class Recent {
  private readonly values: number[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  push(v: number): void {
    if (this.values.length < this.size) this.values.push(v);
    else this.values[this.next] = v;
    this.next = (this.next + 1) % this.size;
  }
  all(): number[] {
    return this.values;
  }
}

/** Nearest-rank percentiles; zeros when empty. */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

const FPS_WINDOW_MS = 5000;
/** Lateness below this is clock noise, not a miss. */
const MISS_TOLERANCE_MS = 1;

export class StreamStats {
  private firstFragmentAt: number | null = null;
  private firstFrameAt: number | null = null;
  private frames = 0;
  private blocks = 0;
  private misses = 0;
  private lastLatency: number | null = null;
  /** When the last frame was (or will be) played, on the playout clock. */
  private playedAt: number | null = null;
  private readonly latency = new Recent(1024);
  private readonly jitter = new Recent(1024);
  private readonly blockTimes = new Recent(256);
  private readonly blockFrames = new Recent(256);
  private readonly arrivals: Array<{ at: number; frames: number }> = [];
  private cache: CacheSlotView[] = [];

  constructor(
    private readonly createdAt: number,
    private readonly targetFps: number,
    /** Frames the cache can hold (window minus the block itself), for occupancy. */
    private cacheCapacity: number,
  ) {}

  /** When the next frame is due on the playout clock; null before the first frame. */
  get nextDueAt(): number | null {
    return this.playedAt === null ? null : this.playedAt + 1000 / this.targetFps;
  }

  setCacheCapacity(frames: number): void {
    this.cacheCapacity = frames;
  }

  recordFirstFragment(at: number): void {
    this.firstFragmentAt ??= at;
  }

  recordBlock(b: BlockArrival): BlockSamples {
    const period = 1000 / this.targetFps;
    const latency = b.readyAt - b.startedAt;
    const out: BlockSamples = { latencyMs: [], jitterMs: [], misses: 0 };
    this.firstFrameAt ??= b.readyAt;
    for (let i = 0; i < b.frames; i++) {
      const due = this.playedAt === null ? b.readyAt : this.playedAt + period;
      if (b.readyAt > due + MISS_TOLERANCE_MS) out.misses++;
      this.playedAt = Math.max(due, b.readyAt);
      out.latencyMs.push(latency);
      this.latency.push(latency);
      if (this.lastLatency !== null) {
        const j = Math.abs(latency - this.lastLatency);
        out.jitterMs.push(j);
        this.jitter.push(j);
      }
      this.lastLatency = latency;
    }
    this.frames += b.frames;
    this.blocks++;
    this.misses += out.misses;
    this.blockTimes.push(b.totalMs);
    this.blockFrames.push(b.frames);
    this.arrivals.push({ at: b.readyAt, frames: b.frames });
    this.cache = b.cache.map((h) => ({ frame: h.frame, role: h.role, position: h.position }));
    return out;
  }

  snapshot(now: number): StatsSnapshot {
    while (this.arrivals.length && this.arrivals[0].at < now - FPS_WINDOW_MS) this.arrivals.shift();
    const span = this.firstFrameAt === null ? 0 : Math.min(FPS_WINDOW_MS, now - this.firstFrameAt);
    const recentFrames = this.arrivals.reduce((n, a) => n + a.frames, 0);
    const genMs = this.blockTimes.all().reduce((s, v) => s + v, 0);
    const genFrames = this.blockFrames.all().reduce((s, v) => s + v, 0);
    return {
      ttffMs: this.firstFragmentAt === null ? null : this.firstFragmentAt - this.createdAt,
      ttfgMs: this.firstFrameAt === null ? null : this.firstFrameAt - this.createdAt,
      frames: this.frames,
      blocks: this.blocks,
      targetFps: this.targetFps,
      fps: span > 0 ? (recentFrames * 1000) / Math.max(span, 1000 / this.targetFps) : 0,
      generationFps: genMs > 0 ? (genFrames * 1000) / genMs : 0,
      latencyMs: percentiles(this.latency.all()),
      blockMs: percentiles(this.blockTimes.all()),
      jitterMs: percentiles(this.jitter.all()),
      deadlineMisses: this.misses,
      missRate: this.frames ? this.misses / this.frames : 0,
      cacheOccupancy: this.cacheCapacity > 0 ? Math.min(1, this.cache.length / this.cacheCapacity) : 0,
      cache: this.cache,
    };
  }
}
