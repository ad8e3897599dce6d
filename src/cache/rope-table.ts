/**
 * Keeping temporal positions inside the model's RoPE table (docs/model.md: Wan's table stops at 1023).
 *
 * Policies place slots on an unbounded timeline (absolute frame indices, re-aligned sinks, or places
 * in the cache). Self-attention sees only differences of temporal positions, so moving every
 * position down by one common shift changes nothing the model computes. When the block's last query
 * would reach the table end, the whole plan is shifted so that it sits at `ropeMaxPosition - 1`.
 *
 * Beyond the table, two kinds of entries cannot follow the shift without leaving the table:
 *  - absolute sink frames (policy `sink`, positions `absolute`) stay pinned at 0..S-1, so the
 *    sink-to-window gap stops growing at what the table can express (about ropeMaxPosition - W);
 *  - tokens kept by participative compression at their own old positions are held at
 *    `ownPositionFloor` (just after a pinned sink, else 0) once the shift would push them below it:
 *    their distance to the queries saturates the same way.
 * Everything else (window, history, re-aligned sinks, re-indexed caches) is exact at any length.
 */
import type { BlockPlan, PlannedSlot } from './types.js';

/** Shift that puts the last query at the table's last index (0 while the block fits). */
export function tableShift(lastQueryPosition: number, ropeMaxPosition: number): number {
  return Math.max(0, lastQueryPosition - (ropeMaxPosition - 1));
}

export interface UnboundedPlan {
  slots: PlannedSlot[];
  queryPositions: number[];
  /** Sink slots keep their position whatever the shift (absolute sinks). */
  pinSinks: boolean;
}

/** Turns a plan on the unbounded timeline into one whose every position lies in [0, ropeMaxPosition). */
export function fitRopeTable(plan: UnboundedPlan, ropeMaxPosition: number): BlockPlan {
  const lastQuery = plan.queryPositions.length ? Math.max(...plan.queryPositions) : 0;
  const shift = tableShift(lastQuery, ropeMaxPosition);
  const pinnedSinks = plan.pinSinks ? plan.slots.filter((s) => s.role === 'sink').length : 0;
  const floor = pinnedSinks;
  const slots = plan.slots.map((slot): PlannedSlot => {
    if (slot.ownPositions) return slot; // moved per token by the ledger (see BlockPlan.positionShift)
    if (plan.pinSinks && slot.role === 'sink') return slot;
    return { ...slot, position: Math.max(floor, slot.position - shift) };
  });
  return {
    slots,
    queryPositions: plan.queryPositions.map((p) => p - shift),
    positionShift: shift,
    ownPositionFloor: floor,
  };
}
