/**
 * Where streams go on a machine with several GPUs: one layer pipeline over all of them (each stream's
 * engine spans every GPU, a stage per GPU), or replicas (each stream's engine holds the whole model on
 * one GPU). Either way the runtime sees one lane per GPU, a lane running one block at a time: a pipeline's
 * lanes are its stages (while one stream's forward is on stage 1 another's is on stage 0), a replica's
 * lane is its GPU. What differs is what one block costs on a lane, and that comes from the calibration of
 * each setup (one stream alone, cache full, full steps): a pipeline's block visits every stage in turn and
 * pays the hand-overs; a replica's runs on one GPU but needs the whole model there.
 *
 * `choosePlacement` evaluates both on the expected load (the streams the server carries at most, spread
 * evenly over the lanes) with the same deadline test admission uses, and takes the one that meets the
 * objectives, or, when both (or neither) do, the one whose busiest lane finishes a round of blocks sooner
 * (more streams per second and a shorter wait alike). Pure: costs come in as a fitted CostModel.
 */
import type { CostModel } from './cost-model.js';
import { SchedulerError } from './errors.js';
import { edfFeasible, type PeriodicLoad } from './feasibility.js';
import type { StreamSpec } from './types.js';

export type Placement = 'pipeline' | 'replicas';

export interface PlacementQuestion {
  /** The calibrated costs: `devices[p]` names each setup's timings in it (absent: that setup was not measured). */
  costModel: CostModel;
  devices: Partial<Record<Placement, string>>;
  /** GPUs on the machine (lanes of either placement). */
  gpus: number;
  /** Streams the setup must carry at once (the server's stream limit). */
  streams: number;
  /** A typical stream: shape, window, frames per latent frame and objectives; its first rung is the full one. */
  stream: Pick<StreamSpec, 'tokensPerFrame' | 'windowFrames' | 'videoFramesPerLatentFrame' | 'objectives' | 'forwardsPerStep'> & { steps: number; blockFrames: number };
  /** Share of each lane admission keeps free (scheduler.headroom). */
  headroom: number;
}

export interface PlacementFigures {
  placement: Placement;
  /** One block at full steps with a full cache on one lane, alone (calibrated), ms. */
  blockMs: number;
  /** Streams on the busiest lane. */
  streamsPerLane: number;
  /** Busiest lane's share of time at full steps. */
  utilisation: number;
  /** A round of the busiest lane's blocks (each stream's block once): the longest a block can wait and run, ms. */
  roundMs: number;
  /** The deadline test (as admission runs it) passes on the busiest lane at full steps. */
  meetsObjectives: boolean;
  detail: string;
}

export interface PlacementChoice {
  placement: Placement;
  /** One sentence: what was compared and why this one. */
  reason: string;
  figures: PlacementFigures[];
}

function evaluate(q: PlacementQuestion, placement: Placement, device: string): PlacementFigures {
  const { stream } = q;
  const shape = {
    queryTokens: stream.blockFrames * stream.tokensPerFrame,
    cachedTokens: Math.max(0, stream.windowFrames - stream.blockFrames) * stream.tokensPerFrame,
    latentFrames: stream.blockFrames,
    steps: stream.steps,
    ...(stream.forwardsPerStep !== undefined ? { forwardsPerStep: stream.forwardsPerStep } : {}),
  };
  const blockMs = q.costModel.blockMs(device, shape) + q.costModel.encodeMs(device, stream.blockFrames);
  const streamsPerLane = Math.ceil(q.streams / q.gpus);
  const periodMs = (stream.blockFrames * stream.videoFramesPerLatentFrame * 1000) / stream.objectives.targetFps;
  const deadlineMs = Math.min(stream.objectives.ttffMs, stream.objectives.latencyMs);
  const loads: PeriodicLoad[] = Array.from({ length: streamsPerLane }, (_, i) => ({ id: `s${i}`, periodMs, costMs: blockMs, deadlineMs, longestUnitMs: blockMs }));
  const test = edfFeasible(loads, 1 - q.headroom);
  return {
    placement,
    blockMs,
    streamsPerLane,
    utilisation: test.utilisation,
    roundMs: streamsPerLane * blockMs,
    meetsObjectives: test.feasible,
    detail: test.feasible ? `meets the objectives (${(100 * test.utilisation).toFixed(0)}% of a lane)` : test.detail,
  };
}

function describe(f: PlacementFigures): string {
  return `${f.placement}: ${f.blockMs.toFixed(0)} ms a block, ${f.streamsPerLane} stream${f.streamsPerLane === 1 ? '' : 's'} a lane, ${f.detail}`;
}

export function choosePlacement(q: PlacementQuestion): PlacementChoice {
  if (!Number.isInteger(q.gpus) || q.gpus < 1) throw new SchedulerError(`placement: gpus = ${q.gpus}; expected a positive integer`);
  if (!Number.isInteger(q.streams) || q.streams < 1) throw new SchedulerError(`placement: streams = ${q.streams}; expected a positive integer`);
  const figures = (['replicas', 'pipeline'] as const)
    .filter((p) => q.devices[p] !== undefined && q.costModel.has(q.devices[p]!))
    .map((p) => evaluate(q, p, q.devices[p]!));
  if (figures.length === 0) {
    throw new SchedulerError(`placement: the cost model has timings for neither setup (asked for ${Object.values(q.devices).join(', ') || 'none'})`);
  }
  const load = `${q.streams} stream${q.streams === 1 ? '' : 's'} on ${q.gpus} GPU${q.gpus === 1 ? '' : 's'}`;
  if (figures.length === 1) return { placement: figures[0].placement, reason: `only ${figures[0].placement} was measured (${describe(figures[0])})`, figures };
  const meeting = figures.filter((f) => f.meetsObjectives);
  if (meeting.length === 1) {
    return { placement: meeting[0].placement, reason: `${load}: only ${meeting[0].placement} meets the objectives at full steps (${figures.map(describe).join('; ')})`, figures };
  }
  // Both (or neither) meet them: the shorter round of blocks on the busiest lane; replicas on a tie (no hand-over between GPUs).
  const [best] = [...figures].sort((a, b) => a.roundMs - b.roundMs || (a.placement === 'replicas' ? -1 : 1));
  const why = meeting.length === 2 ? 'both meet the objectives' : 'neither meets the objectives at full steps';
  return { placement: best.placement, reason: `${load}: ${why}; ${best.placement} finishes a round of blocks sooner (${figures.map(describe).join('; ')})`, figures };
}
