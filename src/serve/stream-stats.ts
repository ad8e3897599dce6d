/**
 * The generation side of a live stream's figures, from block arrivals alone: what the generator made
 * and how fast, and what its cache holds. What viewers were given (TTFF, latency, misses) is the
 * playout ledger's (playout-ledger.ts). Pure arithmetic on timestamps handed in by the caller.
 *
 * It also keeps the generation clock an unscheduled stream is paced by (`nextDueAt`): frames at the
 * target fps from the first one out of the generator, a late frame moving the ones after it.
 */
import type { HeldFrame } from '../cache/types.js';
import type { CacheSlotView, Percentiles } from './protocol.js';
import { percentiles } from './playout-ledger.js';
import { RecentSamples } from '../util/stats.js';

export interface BlockArrival {
  /** When the block came out of the generator. */
  readyAt: number;
  /** Video frames in the block. */
  frames: number;
  /** The generator's own measure of the block's wall time, ms. */
  totalMs: number;
  cache: readonly HeldFrame[];
}

export interface GenerationFigures {
  /** Create -> first frame out of the generator, ms. */
  ttfgMs: number | null;
  frames: number;
  blocks: number;
  targetFps: number;
  /** Frames per second of generation time (frames / sum of block times): the capacity. */
  generationFps: number;
  blockMs: Percentiles;
  cacheOccupancy: number;
  cache: CacheSlotView[];
}

export class StreamStats {
  private firstFrameAt: number | null = null;
  private frames = 0;
  private blocks = 0;
  /** When the last generated frame is due on the generation clock. */
  private dueAt: number | null = null;
  private readonly blockTimes = new RecentSamples(256);
  private readonly blockFrames = new RecentSamples(256);
  private cache: CacheSlotView[] = [];

  constructor(
    private readonly createdAt: number,
    private readonly targetFps: number,
    /** Frames the cache can hold (window minus the block itself), for occupancy. */
    private cacheCapacity: number,
  ) {}

  /** When the next frame is due on the generation clock; null before the first frame. */
  get nextDueAt(): number | null {
    return this.dueAt === null ? null : this.dueAt + 1000 / this.targetFps;
  }

  setCacheCapacity(frames: number): void {
    this.cacheCapacity = frames;
  }

  recordBlock(b: BlockArrival): void {
    const period = 1000 / this.targetFps;
    this.firstFrameAt ??= b.readyAt;
    for (let i = 0; i < b.frames; i++) this.dueAt = this.dueAt === null ? b.readyAt : Math.max(this.dueAt + period, b.readyAt);
    this.frames += b.frames;
    this.blocks++;
    this.blockTimes.push(b.totalMs);
    this.blockFrames.push(b.frames);
    this.cache = b.cache.map((h) => ({ frame: h.frame, role: h.role, position: h.position }));
  }

  snapshot(): GenerationFigures {
    const genMs = this.blockTimes.all().reduce((s, v) => s + v, 0);
    const genFrames = this.blockFrames.all().reduce((s, v) => s + v, 0);
    return {
      ttfgMs: this.firstFrameAt === null ? null : this.firstFrameAt - this.createdAt,
      frames: this.frames,
      blocks: this.blocks,
      targetFps: this.targetFps,
      generationFps: genMs > 0 ? (genFrames * 1000) / genMs : 0,
      blockMs: percentiles(this.blockTimes.all()),
      cacheOccupancy: this.cacheCapacity > 0 ? Math.min(1, this.cache.length / this.cacheCapacity) : 0,
      cache: this.cache,
    };
  }
}
