/**
 * Sliding window, no sink (Self-Forcing's rolling cache): keep the last W - F frames at their own
 * frame index. Known failure: quality collapses once the first frames leave (the attention-sink
 * effect). Default W = 12.
 */
import type { BlockPlan, CachePolicy, PlanInput } from '../types.js';
import { fitRopeTable } from '../rope-table.js';
import { arrangeFrames } from './arrange.js';
import { consecutive, keepSlot } from './slots.js';

export interface WindowPolicyOptions {
  /** Latent frames attended per block, the block included. */
  window?: number;
  ropeMaxPosition?: number;
}

export class WindowPolicy implements CachePolicy {
  readonly name = 'window';
  readonly window: number;
  readonly ropeMaxPosition: number;

  constructor(options: WindowPolicyOptions = {}) {
    this.window = options.window ?? 12;
    this.ropeMaxPosition = options.ropeMaxPosition ?? 1024;
  }

  planBlock(input: PlanInput): BlockPlan {
    const { rest } = arrangeFrames(input, { window: this.window, sink: 0 });
    return fitRopeTable(
      {
        slots: rest.map((e) => keepSlot(e, e.frame)),
        queryPositions: consecutive(input.blockStart, input.blockFrames),
        pinSinks: false,
      },
      this.ropeMaxPosition,
    );
  }
}
