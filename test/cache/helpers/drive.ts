/**
 * Runs a policy over a stream without a ledger: the plan's slots become the held frames, the block's
 * frames become the next block's incoming frames. Tracks what every slot is made of (frame -> weight)
 * by composing the plans' weighted terms, so blends can be checked exactly.
 */
import type { BlockPlan, CachePolicy, HeldFrame, IncomingFrame } from '../../../src/cache/types.js';

export type Mix = Map<number, number>;

export interface DrivenBlock {
  index: number;
  blockStart: number;
  plan: BlockPlan;
  /** What each slot of the plan holds. */
  mixes: Mix[];
}

/** `trackMixes: false` skips the composition (long runs of ema-sink, whose slots blend ever more frames). */
export function drivePolicy(
  policy: CachePolicy,
  blocks: number,
  blockFrames: number,
  visit: (block: DrivenBlock) => void,
  trackMixes = true,
): void {
  let held: HeldFrame[] = [];
  let heldMixes: Mix[] = [];
  let incoming: IncomingFrame[] = [];
  for (let b = 0; b < blocks; b++) {
    const blockStart = b * blockFrames;
    const plan = policy.planBlock({ held, incoming, blockStart, blockFrames });
    const mixes = !trackMixes ? [] : plan.slots.map((slot) => {
      const mix: Mix = new Map();
      for (const term of slot.terms) {
        const ref = term.ref;
        if ('tokens' in ref) throw new Error('a frame-level policy plans no token refs');
        const source: Mix = 'held' in ref ? heldMixes[ref.held] : new Map([[incoming[ref.incoming].frame, 1]]);
        if (!source) throw new Error(`plan refers to a missing slot ${JSON.stringify(term.ref)}`);
        for (const [frame, w] of source) mix.set(frame, (mix.get(frame) ?? 0) + term.weight * w);
      }
      return mix;
    });
    visit({ index: b, blockStart, plan, mixes });
    held = plan.slots.map((s) => ({ frame: s.frame, role: s.role, position: s.position }));
    heldMixes = mixes;
    incoming = Array.from({ length: blockFrames }, (_, i) => ({ frame: blockStart + i }));
  }
}

/** The single frame a slot holds (throws for blends). */
export function soleFrame(mix: Mix): number {
  if (mix.size !== 1) throw new Error(`slot is a blend of ${[...mix.keys()].join(', ')}`);
  const [[frame, w]] = [...mix];
  if (w !== 1) throw new Error(`slot holds frame ${frame} at weight ${w}`);
  return frame;
}

export function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}
