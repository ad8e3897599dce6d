/**
 * EMA-Sink (Reward Forcing): S fixed sink slots, initialised with the first S frames. The oldest
 * non-sink frames that leave the window are fused into the slots token by token, K and V alike:
 *   sink = alpha * sink + (1 - alpha) * evicted
 * (keys are stored un-rotated, so the blend is of un-rotated keys). Evicted frame j (oldest first)
 * goes into slot j mod S, in order: fewer evicted frames than slots fill the oldest slots, more are
 * chained. The whole cache is re-indexed by place, the sink right before the history.
 * Defaults: W = 9, S = 3, alpha = 0.99 (the released code hard-codes 0.999, under which the sink is
 * still ~93% the first frames after a minute; an early release fused the newest frames, not the oldest).
 */
import type { BlockPlan, CachePolicy, PlanInput, PlannedSlot } from '../types.js';
import { fitRopeTable } from '../rope-table.js';
import { arrangeFrames } from './arrange.js';
import { consecutive, keepSlot } from './slots.js';

export interface EmaSinkPolicyOptions {
  window?: number;
  sink?: number;
  alpha?: number;
  ropeMaxPosition?: number;
}

export class EmaSinkPolicy implements CachePolicy {
  readonly name = 'ema-sink';
  readonly window: number;
  readonly sink: number;
  readonly alpha: number;
  readonly ropeMaxPosition: number;

  constructor(options: EmaSinkPolicyOptions = {}) {
    this.window = options.window ?? 9;
    this.sink = options.sink ?? 3;
    this.alpha = options.alpha ?? 0.99;
    this.ropeMaxPosition = options.ropeMaxPosition ?? 1024;
    if (this.sink < 1) throw new RangeError('ema-sink needs at least one sink slot');
  }

  planBlock(input: PlanInput): BlockPlan {
    const { sinks, rest, evicted } = arrangeFrames(input, { window: this.window, sink: this.sink });
    const fused: PlannedSlot[] = sinks.map((e, i) => keepSlot(e, i));
    evicted.forEach((e, j) => {
      const slot = fused[j % fused.length];
      for (const term of slot.terms) term.weight *= this.alpha;
      slot.terms.push({ ref: e.ref, weight: 1 - this.alpha });
    });
    const slots = [...fused, ...rest.map((e, i) => keepSlot(e, fused.length + i))];
    return fitRopeTable(
      { slots, queryPositions: consecutive(slots.length, input.blockFrames), pinSinks: false },
      this.ropeMaxPosition,
    );
  }
}
