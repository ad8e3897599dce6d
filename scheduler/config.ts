/**
 * The scheduler's settings (plain data) and their defaults. The configuration file's `scheduler:`
 * section (src/config/sections/scheduler.ts) validates these keys and takes its defaults from here.
 */
export type BatchingMode = 'streams' | 'stream-batch';

export interface SchedulerConfig {
  /** Target frame rate of a live stream; absent: the video's own rate (see objectiveFps). */
  targetFps?: number;
  /** Time-to-first-frame objective, ms. */
  ttffMs: number;
  /** Per-frame latency objective, ms (from a frame's place on the stream's timeline to its display). */
  latencyMs: number;
  /** Quality ladder: the step counts a block may be degraded to, highest first. */
  stepLadder: number[];
  /** Latent frames per block the scheduler may choose, preferred first. */
  blockFrames: number[];
  /** Most work items (stream blocks at some step) in one batched forward. */
  maxBatch: number;
  /** Which blocks may share a forward (batching.ts). */
  batching: BatchingMode;
  /** Share of each device's time the admission test keeps free (0.1 = plan to 90% at most). */
  headroom: number;
  /** Added to a new stream's planned start-up delay beyond what the deadline test needs, ms. */
  marginMs: number;
  /** Weight of the newest measurement in a device's speed estimate (measured / predicted time). */
  speedSmoothing: number;
  /** Half-life, seconds, of an idle device's speed estimate's return to the calibration (1). */
  idleSpeedHalfLifeSeconds: number;
  /** Relative change of a device's speed estimate that makes the scheduler re-plan its ladder. */
  replanThreshold: number;
  /** Pipeline: rebalance the layer split when the bottleneck stage would shrink by more than this share. */
  rebalanceThreshold: number;
}

export const schedulerDefaults: Readonly<Required<Omit<SchedulerConfig, 'targetFps'>>> = Object.freeze({
  ttffMs: 2000,
  latencyMs: 2500,
  stepLadder: [4, 3, 2],
  blockFrames: [3],
  maxBatch: 4,
  batching: 'streams',
  headroom: 0.1,
  marginMs: 250,
  speedSmoothing: 0.3,
  idleSpeedHalfLifeSeconds: 10,
  replanThreshold: 0.05,
  rebalanceThreshold: 0.1,
});

/** The defaults with `overrides` on top (fresh arrays: callers may keep and change the result). */
export function schedulerConfig(overrides: Partial<SchedulerConfig> = {}): SchedulerConfig {
  return { ...schedulerDefaults, stepLadder: [...schedulerDefaults.stepLadder], blockFrames: [...schedulerDefaults.blockFrames], ...overrides };
}

/** The frame rate a live stream is held to: scheduler.targetFps, by default the video's own (generation.fps). */
export function objectiveFps(config: { scheduler: Pick<SchedulerConfig, 'targetFps'>; generation: { fps: number } }): number {
  return config.scheduler.targetFps ?? config.generation.fps;
}
