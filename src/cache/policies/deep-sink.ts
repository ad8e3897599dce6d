/**
 * Deep Sink (Deep Forcing): a large sink (about half the window; paper: W = 21, S = 10, best 10-15,
 * 18 repeats) re-aligned on the timeline at EVERY block: with f0 the block's first frame and N the
 * frames kept before it (sink + history), sink frame i sits at f0 - N + i, right before the
 * retained history, which keeps its own frame indices. (The released code re-aligns only when
 * compression runs, so the gap grows by a block in between; not copied.) Keys are stored
 * un-rotated, so re-alignment is a change of positions alone; values are untouched.
 */
import type { BlockPlan, CachePolicy, PlanInput } from '../types.js';
import { fitRopeTable } from '../rope-table.js';
import { arrangeFrames } from './arrange.js';
import { consecutive, keepSlot } from './slots.js';

export interface DeepSinkPolicyOptions {
  window?: number;
  sink?: number;
  ropeMaxPosition?: number;
}

export class DeepSinkPolicy implements CachePolicy {
  readonly name = 'deep-sink';
  readonly window: number;
  readonly sink: number;
  readonly ropeMaxPosition: number;

  constructor(options: DeepSinkPolicyOptions = {}) {
    this.window = options.window ?? 21;
    this.sink = options.sink ?? 10;
    this.ropeMaxPosition = options.ropeMaxPosition ?? 1024;
  }

  planBlock(input: PlanInput): BlockPlan {
    const { sinks, rest } = arrangeFrames(input, { window: this.window, sink: this.sink });
    const f0 = input.blockStart;
    const kept = sinks.length + rest.length;
    return fitRopeTable(
      {
        slots: [...sinks.map((e, i) => keepSlot(e, f0 - kept + i)), ...rest.map((e) => keepSlot(e, e.frame))],
        queryPositions: consecutive(f0, input.blockFrames),
        pinSinks: false,
      },
      this.ropeMaxPosition,
    );
  }
}
