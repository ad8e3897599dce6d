/**
 * What to measure to fit a cost model: the forward shapes of a benchmark sweep. Pure: the caller
 * times its engine on each point (a few repetitions, the median) and passes the samples to
 * `CostModel.fit`. The sweep spans batch sizes, block sizes and cache lengths, so that the per-call,
 * per-item, per-token and per-token-key terms can be told apart.
 */
import type { ForwardItemShape } from './cost-model.js';

export interface CalibrationPoint extends ForwardItemShape {
  batch: number;
}

export interface CalibrationGridOptions {
  tokensPerFrame: number;
  /** Cache window in latent frames (the block included). */
  windowFrames: number;
  /** Block sizes the scheduler may use (latent frames). */
  blockFrames: readonly number[];
  maxBatch: number;
}

export function calibrationGrid(o: CalibrationGridOptions): CalibrationPoint[] {
  const batches = [...new Set([1, Math.min(2, o.maxBatch), o.maxBatch])].sort((a, b) => a - b);
  // A block size of 1 frame as well, so that the per-token terms are not tied to one block size.
  const frames = [...new Set([1, ...o.blockFrames])].sort((a, b) => a - b);
  const points: CalibrationPoint[] = [];
  for (const batch of batches) {
    for (const f of frames) {
      const most = Math.max(0, o.windowFrames - f);
      const cached = [...new Set([0, Math.round(most / 3), Math.round((2 * most) / 3), most])].sort((a, b) => a - b);
      for (const c of cached) points.push({ batch, queryTokens: f * o.tokensPerFrame, cachedTokens: c * o.tokensPerFrame });
    }
  }
  return points;
}
