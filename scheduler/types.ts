/**
 * Plain data exchanged with the scheduler. Everything here is serialisable (JSON) and carries no
 * behaviour: a plan says what should run, a result says what happened.
 * Times are milliseconds on the injected clock.
 */

/** The scheduler's only source of time. Simulations pass a virtual clock. */
export interface Clock {
  now(): number;
}

/** What a live stream is promised. */
export interface StreamObjectives {
  /** Frames leave the playout buffer at this constant rate. */
  targetFps: number;
  /** Per-frame latency objective: display time minus the frame's place on the stream's timeline. */
  latencyMs: number;
  /** Time to first frame objective: admission to the first frame on screen. */
  ttffMs: number;
  /** Higher is more important: lower priorities are degraded first. */
  priority: number;
}

/** A stream asking to be admitted. */
export interface StreamSpec {
  id: string;
  /** Streams with the same model may share a batched forward. */
  model: string;
  /** Tokens of one latent frame (docs/model.md: 1560 for the 1.3B model at 832x480). */
  tokensPerFrame: number;
  /** Cache window W in latent frames (the block itself included): keys = min(W, frames so far) frames. */
  windowFrames: number;
  /** Video frames decoded from one latent frame (1 for the demo model's space-to-depth, 4 for the Wan VAE). */
  videoFramesPerLatentFrame: number;
  /**
   * Video frames of the stream's first block when it differs from latentFrames * videoFramesPerLatentFrame:
   * a streaming decoder's causal start (TAEHV, Wan VAE) gives 1 video frame for the first latent frame,
   * so a first block of F latent frames gives 4F - 3. Absent: the same as every block.
   */
  firstBlockVideoFrames?: number;
  objectives: StreamObjectives;
  /** The stream ends after this many video frames (simulations); absent: until `remove`. */
  durationFrames?: number;
  /**
   * This stream's step counts, overriding the scheduler's `stepLadder` (e.g. a generator whose full
   * step list is shorter or longer than the configured ladder).
   */
  stepLadder?: number[];
  /** This stream's allowed block sizes, overriding the scheduler's `blockFrames` (a generator with a fixed block). */
  blockFrames?: number[];
  /**
   * Forwards of one denoising step: 2 with classifier-free guidance (the prompt's and the unconditional one), absent
   * or 1 otherwise. A block at s steps costs s * forwardsPerStep + 1 forwards (the clean pass is one).
   */
  forwardsPerStep?: number;
  /**
   * Forwards of one denoising step of the stream's first block when it differs from `forwardsPerStep`: a first block
   * opened from noise under its own guidance scale (generation.openingGuidance), 2 guided or 1 not. Absent: as
   * `forwardsPerStep`.
   */
  openingForwardsPerStep?: number;
  /**
   * Denoising steps of the stream's first block per step of its rung when they differ (a first block opened from noise
   * over its own, longer step list, generation.openingSteps: 8 steps for 4 gives 2): the first block runs
   * round(steps * openingStepScale) steps, at least 1. Absent: 1.
   */
  openingStepScale?: number;
}

/** One rung of a stream's quality ladder. */
export interface Rung {
  steps: number;
  /** Latent frames per block. */
  blockFrames: number;
}

export interface DeviceSpec {
  id: string;
  /** Most work items in one forward on this device. */
  maxBatch: number;
}

/**
 * One stream's block at one step (the forward's index in the block): steps 0..steps-1 denoise, step
 * `steps` is the clean pass. With `granularity: 'block'` an item is a whole block instead (kind 'block', step 0): its steps,
 * its clean pass and its decode in one job, as a generator's `next({ steps })` runs it.
 */
export interface PlanItem {
  streamId: string;
  model: string;
  block: number;
  step: number;
  steps: number;
  /** The stream's forwards of one denoising step (StreamSpec.forwardsPerStep); absent: 1. */
  forwardsPerStep?: number;
  kind: 'denoise' | 'clean' | 'block';
  latentFrames: number;
  /** Video frame index of the block's first frame. */
  firstFrame: number;
  queryTokens: number;
  cachedTokens: number;
  /** The block's deadline: the playout slot of its first frame. */
  deadline: number;
}

/** One batched forward on one device (plus the decode of the blocks whose clean pass it runs). */
export interface PlanJob {
  id: number;
  device: string;
  items: PlanItem[];
  /** Latent frames to decode after the forward (clean-pass items). */
  decodeLatentFrames: number;
  predictedMs: number;
}

/** A stream's rung changed (degraded or restored). */
export interface RungChange {
  streamId: string;
  device: string;
  from: Rung;
  to: Rung;
  reason: string;
}

/** A stream the scheduler stopped so that the others keep their deadlines (a device slowed down). */
export interface StoppedStream {
  streamId: string;
  reason: string;
}

/** What one tick decided. */
export interface Plan {
  tick: number;
  now: number;
  jobs: PlanJob[];
  changes: RungChange[];
  stopped: StoppedStream[];
}

/**
 * `forward`: a job is one (batched) forward, as an engine runs it (the default). `block`: a job is one
 * whole block of one stream (steps + clean pass + decode), for runtimes that can only run whole blocks;
 * a block then cannot be preempted, so the deadline test counts a whole block as the blocking term.
 */
export type Granularity = 'forward' | 'block';

/** What happened to one job of a plan. */
export interface JobResult {
  jobId: number;
  startedAt: number;
  finishedAt: number;
}

export type RefusalCode = 'capacity' | 'deadline' | 'no-device' | 'duplicate';

export type AdmissionDecision =
  | { admitted: true; streamId: string; device: string; rung: Rung; plannedDelayMs: number; changes: RungChange[] }
  | { admitted: false; streamId: string; code: RefusalCode; reason: string };

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** What the scheduler's planning playout (playout.ts) counts for a stream. */
export interface PlannedPlayout {
  ttffMs: number | null;
  framesDelivered: number;
  missedDeadlines: number;
  missRate: number;
  latencyMs: Percentiles;
  jitterMs: Percentiles;
}

export interface StreamMetrics extends PlannedPlayout {
  streamId: string;
  device: string | null;
  state: 'running' | 'finished' | 'stopped' | 'removed';
  rung: Rung;
  /** Start-up delay the playout was planned with (the stream's constant latency when on time). */
  plannedDelayMs: number;
  /** Blocks finished at each step count, e.g. { "4": 10, "3": 2 }. */
  blocksBySteps: Record<string, number>;
}
