/** `scheduler:` — the SLO-aware block scheduler (owned by scheduler/, whose defaults these are; docs/scheduler.md). */
import { z } from 'zod';
import { schedulerDefaults as d, type SchedulerConfig as SchedulerSettings } from '../../../scheduler/config.js';

export const schedulerSection = z
  .object({
    /**
     * Target frame rate of a live stream (frames leave the playout buffer at this rate). Default: the
     * video's own rate, generation.fps; a machine too slow for it admits fewer streams, at lower rungs.
     */
    targetFps: z.number().positive().optional(),
    /** Time-to-first-frame objective, ms. */
    ttffMs: z.number().positive().default(d.ttffMs),
    /** Per-frame latency objective, ms (from a frame's place on the stream's timeline to its display). */
    latencyMs: z.number().positive().default(d.latencyMs),
    /** Quality ladder: the step counts a block may be degraded to, highest first. */
    stepLadder: z.array(z.number().int().positive()).min(1).default(() => [...d.stepLadder]),
    /**
     * Latent frames per block the scheduler may choose, preferred first. Larger blocks amortise the
     * per-call overhead at the price of latency; they are tried at each rung before lowering steps.
     */
    blockFrames: z.array(z.number().int().positive()).min(1).default(() => [...d.blockFrames]),
    /** Most work items (stream blocks at some step) in one batched forward. */
    maxBatch: z.number().int().positive().default(d.maxBatch),
    /**
     * `streams`: batch blocks of different streams that share a model, each stream's blocks in strict
     * order (Self-Forcing semantics). `stream-batch`: also batch one stream's consecutive blocks at
     * different denoising steps (StreamDiffusionV2); a block's denoising may then start before the
     * previous block's clean pass.
     */
    batching: z.enum(['streams', 'stream-batch']).default(d.batching),
    /** Share of each device's time the admission test keeps free (0.1 = plan to 90% at most). */
    headroom: z.number().min(0).lt(1).default(d.headroom),
    /** Added to a new stream's planned start-up delay beyond what the deadline test needs, ms. */
    marginMs: z.number().nonnegative().default(d.marginMs),
    /** Weight of the newest measurement in a device's speed estimate (measured / predicted time). */
    speedSmoothing: z.number().gt(0).max(1).default(d.speedSmoothing),
    /**
     * While a device runs no stream nothing measures it: its speed estimate then falls back toward the
     * calibration (1) with this half-life, so that a slowdown seen long ago never decides a new stream's
     * admission. Seconds; 0 = back to the calibration as soon as the device is idle.
     */
    idleSpeedHalfLifeSeconds: z.number().nonnegative().default(d.idleSpeedHalfLifeSeconds),
    /** Relative change of a device's speed estimate that makes the scheduler re-plan its ladder. */
    replanThreshold: z.number().gt(0).default(d.replanThreshold),
    /** Pipeline: rebalance the layer split when the bottleneck stage would shrink by more than this share. */
    rebalanceThreshold: z.number().gt(0).lt(1).default(d.rebalanceThreshold),
  })
  .strict();

export type SchedulerConfig = z.output<typeof schedulerSection>;

/** The section validates exactly what the scheduler reads: a key added on one side only fails to compile. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameKeys: Same<SchedulerConfig, SchedulerSettings> = true;
void sameKeys;
