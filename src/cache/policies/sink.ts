/**
 * Frame sink (StreamingLLM; Self-Forcing / LongLive's "frame sink"): frames 0..S-1 stay forever,
 * plus the last W - S - F frames. LongLive defaults: W = 12, S = 3.
 *
 * positions 'absolute' (Self-Forcing, LongLive): every frame at its own index; the sink stays at
 *   0..S-1 while the window moves on, so the sink-to-window gap grows (until the RoPE table end,
 *   where it stops growing: src/cache/rope-table.ts).
 * positions 'cache' (StreamingLLM): every cached frame at its place in the cache (0..n-1), the
 *   block's frames right after (n..n+F-1).
 */
import type { BlockPlan, CachePolicy, PlanInput } from '../types.js';
import { fitRopeTable } from '../rope-table.js';
import { arrangeFrames } from './arrange.js';
import { consecutive, keepSlot } from './slots.js';

export type SinkPositions = 'absolute' | 'cache';

export interface SinkPolicyOptions {
  window?: number;
  sink?: number;
  positions?: SinkPositions;
  ropeMaxPosition?: number;
}

export class SinkPolicy implements CachePolicy {
  readonly name = 'sink';
  readonly window: number;
  readonly sink: number;
  readonly positions: SinkPositions;
  readonly ropeMaxPosition: number;

  constructor(options: SinkPolicyOptions = {}) {
    this.window = options.window ?? 12;
    this.sink = options.sink ?? 3;
    this.positions = options.positions ?? 'absolute';
    this.ropeMaxPosition = options.ropeMaxPosition ?? 1024;
  }

  planBlock(input: PlanInput): BlockPlan {
    const { sinks, rest } = arrangeFrames(input, { window: this.window, sink: this.sink });
    const kept = [...sinks, ...rest];
    if (this.positions === 'cache') {
      // Re-indexing by place: compressed tokens take their slot's place too (their own positions
      // would be places in a cache that no longer exists).
      return fitRopeTable(
        {
          slots: kept.map((e, i) => keepSlot({ ...e, ownPositions: false }, i)),
          queryPositions: consecutive(kept.length, input.blockFrames),
          pinSinks: false,
        },
        this.ropeMaxPosition,
      );
    }
    return fitRopeTable(
      {
        slots: kept.map((e) => keepSlot(e, e.frame)),
        queryPositions: consecutive(input.blockStart, input.blockFrames),
        pinSinks: true,
      },
      this.ropeMaxPosition,
    );
  }
}
