/** Small helpers shared by the policies: a kept frame as a plan slot, and a block's own positions. */
import type { PlannedSlot } from '../types.js';
import type { FrameEntry } from './arrange.js';

/** A frame kept as it is, at `position` (own-position slots keep theirs; the ledger moves them). */
export function keepSlot(entry: FrameEntry, position: number): PlannedSlot {
  const slot: PlannedSlot = { terms: [{ ref: entry.ref, weight: 1 }], frame: entry.frame, role: entry.role, position };
  if (entry.ownPositions) {
    slot.ownPositions = true;
    slot.position = entry.position;
  }
  return slot;
}

export function consecutive(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}
