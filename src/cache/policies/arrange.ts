/**
 * What every frame-level policy starts from: the held frames followed by the incoming ones, split
 * into sink and the rest, and the oldest non-sink frames that must leave so that the block fits in
 * the window. Policies differ only in what they do with the evicted frames and where they place
 * the kept ones.
 */
import type { FrameRef, HeldFrame, PlanInput, SlotRole } from '../types.js';

export interface FrameEntry {
  ref: FrameRef;
  frame: number;
  role: SlotRole;
  /** The held slot's current position (incoming frames: their frame index). */
  position: number;
  ownPositions: boolean;
}

export interface Arrangement {
  sinks: FrameEntry[];
  /** Non-sink frames kept, oldest first. */
  rest: FrameEntry[];
  /** Non-sink frames that leave the cache, oldest first (none when the input asks to keep all). */
  evicted: FrameEntry[];
}

export interface ArrangeOptions {
  window: number;
  sink: number;
}

function heldEntry(h: HeldFrame, index: number): FrameEntry {
  return { ref: { held: index }, frame: h.frame, role: h.role, position: h.position, ownPositions: h.ownPositions === true };
}

export function arrangeFrames(input: PlanInput, options: ArrangeOptions): Arrangement {
  const sinks: FrameEntry[] = [];
  const rest: FrameEntry[] = [];
  input.held.forEach((h, i) => (h.role === 'sink' ? sinks : rest).push(heldEntry(h, i)));
  // A retune may change the sink size: extra sink frames (the newest) become the oldest history;
  // missing ones are taken from the oldest whole history frames.
  for (const demoted of sinks.splice(options.sink).reverse()) rest.unshift({ ...demoted, role: 'history' });
  while (sinks.length < options.sink && rest.length > 0 && rest[0].role === 'history' && !rest[0].ownPositions) {
    sinks.push({ ...rest.shift()!, role: 'sink' });
  }
  // The first frames of the video fill the sink; afterwards frames enter as history.
  input.incoming.forEach((f, i) => {
    const role: SlotRole = sinks.length < options.sink ? 'sink' : 'history';
    (role === 'sink' ? sinks : rest).push({ ref: { incoming: i }, frame: f.frame, role, position: f.frame, ownPositions: false });
  });
  if (input.keepAll) return { sinks, rest, evicted: [] };
  const room = Math.max(0, options.window - input.blockFrames - sinks.length);
  const excess = Math.max(0, rest.length - room);
  return { sinks, rest: rest.slice(excess), evicted: rest.slice(0, excess) };
}
