/**
 * Sparse attention over the cache: far frames attended at reduced density (the pattern of the video
 * sparse-attention papers: attention energy decays with temporal distance, so far frames keep a
 * spatial subsample). The sink frames, the `denseFrames` most recent frames and the block itself stay
 * dense; every older whole history frame keeps 1 of every `stride` (k) tokens, and k such thinned
 * frames are packed into ONE slot of T rows (role 'sparse'), so the far part of the cache holds k
 * times fewer keys. No engine change: a new packed slot is an ordinary per-row gather (`{ tokens }`
 * refs, the same rows in every layer), and its tokens carry their own positions.
 *
 * Pattern: member j of a group whose first frame is m0 keeps the tokens at grid (row, column) with
 * (row + column) mod k == (m0 + j) mod k: diagonal stripes, offset by the frame index, so the k
 * members together hold every spatial location exactly once and each member samples every row and
 * column of its frame. A packed slot's row t holds location t of the member that kept it.
 *
 * Planning (one wrapper around a frame-level base policy, as participative compression is):
 *  1. each held packed slot is shown to the base policy as its k member frames (role 'sparse', so a
 *     retune never promotes one to the sink), whole frames as they are;
 *  2. the base policy plans over those frames as if the cache were dense: it evicts in time, places
 *     the sink (absolute, re-aligned, re-indexed) and fits the RoPE table;
 *  3. a packed slot stays while all its members do (it leaves with its oldest frame, so the cache
 *     never reaches further back than the dense window), each token at the position the base plan
 *     gave the frame it came from (`tokenPositions`): it follows re-alignment, re-indexing and the
 *     table shift exactly as a whole frame would;
 *  4. held whole history frames older than the `denseFrames` most recent ones are packed, k at a time,
 *     oldest first; fewer than k left over wait dense until the group is complete. (Incoming frames
 *     are never packed in the plan that takes them in: the gather reads the current rows only, and
 *     denseFrames >= the block keeps them dense anyway.)
 *
 * Not combined (cacheConfigProblems refuses): ema-sink (it fuses whole frames into the sink as they
 * leave, and far frames are no longer whole) and participative compression (both thin the far cache).
 * Stride 1 packs nothing: a retune that turns sparse off drops the packed slots it finds (they are no
 * whole frames a dense policy could place), and the next blocks refill the history.
 */
import type { BlockPlan, CachePolicy, FrameRef, HeldFrame, PlanInput, PlannedSlot } from './types.js';

export interface SparseOptions {
  /** k: far frames keep 1 of every k tokens, k of them per packed slot; 1 = off. */
  stride: number;
  /** Most recent cached frames (the block not counted) that stay dense. */
  denseFrames: number;
  tokensPerFrame: number;
  gridWidth: number;
  layers: number;
}

/** Which member of a k-frame group whose first frame is `firstFrame` keeps grid token t. */
export function memberOf(t: number, gridWidth: number, firstFrame: number, stride: number): number {
  const diagonal = Math.floor(t / gridWidth) + (t % gridWidth);
  return (((diagonal - firstFrame) % stride) + stride) % stride;
}

/** [T] the member index that keeps each grid token. */
export function packPattern(tokensPerFrame: number, gridWidth: number, firstFrame: number, stride: number): Int32Array {
  return Int32Array.from({ length: tokensPerFrame }, (_, t) => memberOf(t, gridWidth, firstFrame, stride));
}

/** Where a frame shown to the base policy lives in the real cache. */
interface Origin {
  slot: number;
  /** Member index within a packed slot; -1 for a whole frame. */
  member: number;
}

export class SparsePolicy implements CachePolicy {
  readonly name: string;
  readonly base: CachePolicy;
  readonly options: SparseOptions;

  constructor(base: CachePolicy, options: SparseOptions) {
    if (!(Number.isInteger(options.stride) && options.stride >= 1)) throw new RangeError(`sparse: stride ${options.stride} must be a positive integer`);
    if (!(Number.isInteger(options.denseFrames) && options.denseFrames >= 0)) throw new RangeError(`sparse: denseFrames ${options.denseFrames} must be a non-negative integer`);
    if (options.tokensPerFrame % options.gridWidth !== 0) throw new RangeError(`sparse: ${options.tokensPerFrame} tokens are not rows of ${options.gridWidth}`);
    this.base = base;
    this.options = options;
    this.name = options.stride > 1 ? `${base.name}+sparse` : base.name;
  }

  planBlock(input: PlanInput): BlockPlan {
    const { shown, origins } = this.expand(input.held);
    const plan = this.base.planBlock({ ...input, held: shown });
    const slots = this.collapse(plan.slots, origins, input.held);
    return { ...plan, slots: this.pack(slots, input.held.length) };
  }

  /** Packed slots as their member frames (stride 1: packed slots are left out, i.e. dropped). */
  private expand(held: readonly HeldFrame[]): { shown: HeldFrame[]; origins: Origin[] } {
    const shown: HeldFrame[] = [];
    const origins: Origin[] = [];
    held.forEach((h, slot) => {
      if (!h.packed) {
        shown.push(h);
        origins.push({ slot, member: -1 });
      } else if (this.options.stride > 1) {
        h.packed.forEach((frame, member) => {
          shown.push({ frame, role: 'sparse', position: h.position });
          origins.push({ slot, member });
        });
      }
    });
    return { shown, origins };
  }

  /** The base plan back on the real cache: whole frames re-referenced, packed slots kept whole or dropped. */
  private collapse(planned: PlannedSlot[], origins: Origin[], held: readonly HeldFrame[]): PlannedSlot[] {
    const memberPositions = new Map<number, Map<number, number>>(); // packed slot -> member -> position
    for (const slot of planned) {
      const origin = this.packedOrigin(slot.terms[0].ref, origins);
      if (!origin) continue;
      if (slot.terms.length !== 1 || slot.terms[0].weight !== 1) throw new Error(`${this.base.name}: a sparse slot's frames can only be kept and placed, not blended`);
      if (!memberPositions.has(origin.slot)) memberPositions.set(origin.slot, new Map());
      memberPositions.get(origin.slot)!.set(origin.member, slot.position);
    }
    const out: PlannedSlot[] = [];
    for (const slot of planned) {
      const ref = slot.terms[0].ref;
      const origin = this.packedOrigin(ref, origins);
      if (!origin) {
        for (const term of slot.terms) if (this.packedOrigin(term.ref, origins)) throw new Error(`${this.base.name}: a sparse slot's frames cannot be blended`);
        out.push({ ...slot, terms: slot.terms.map((term) => ({ ...term, ref: this.wholeRef(term.ref, origins) })) });
        continue;
      }
      if (origin.member !== 0) continue; // the slot is emitted once, where its oldest frame is
      const h = held[origin.slot];
      const members = h.packed!;
      const positions = memberPositions.get(origin.slot)!;
      if (positions.size !== members.length) continue; // its oldest frames left the window: it leaves
      out.push(this.packedSlot({ held: origin.slot }, members, members.map((_, j) => positions.get(j)!)));
    }
    return out;
  }

  /** Whole far history frames, k at a time, oldest first, into new packed slots. */
  private pack(slots: PlannedSlot[], heldCount: number): PlannedSlot[] {
    const k = this.options.stride;
    if (k < 2) return slots;
    const nonSink = slots.map((s, i) => ({ s, i })).filter(({ s }) => s.role !== 'sink');
    const far = nonSink.slice(0, Math.max(0, nonSink.length - this.options.denseFrames)).filter(({ s }) => isWholeHeldFrame(s, heldCount));
    const groups = Math.floor(far.length / k);
    if (groups === 0) return slots;
    const replaced = new Map<number, PlannedSlot | null>();
    for (let g = 0; g < groups; g++) {
      const members = far.slice(g * k, (g + 1) * k);
      const frames = members.map(({ s }) => s.frame);
      const rowsFrom = members.map(({ s }) => (s.terms[0].ref as { held: number }).held * this.options.tokensPerFrame);
      const pattern = packPattern(this.options.tokensPerFrame, this.options.gridWidth, frames[0], k);
      const rows = Int32Array.from(pattern, (member, t) => rowsFrom[member] + t);
      const ref: FrameRef = { tokens: Array.from({ length: this.options.layers }, () => rows) };
      members.forEach(({ i }, j) => replaced.set(i, j === 0 ? this.packedSlot(ref, frames, members.map(({ s }) => s.position)) : null));
    }
    return slots.flatMap((s, i) => {
      const r = replaced.get(i);
      return r === undefined ? [s] : r === null ? [] : [r];
    });
  }

  private packedSlot(ref: FrameRef, frames: number[], memberPositions: number[]): PlannedSlot {
    const { tokensPerFrame: T, gridWidth } = this.options;
    const pattern = packPattern(T, gridWidth, frames[0], frames.length);
    const tokenPositions = Float32Array.from(pattern, (member) => memberPositions[member]);
    return {
      terms: [{ ref, weight: 1 }],
      frame: frames[0],
      role: 'sparse',
      position: Math.min(...memberPositions),
      packed: frames,
      tokenPositions,
    };
  }

  private packedOrigin(ref: FrameRef, origins: Origin[]): Origin | null {
    if (!('held' in ref)) return null;
    const origin = origins[ref.held];
    return origin.member >= 0 ? origin : null;
  }

  private wholeRef(ref: FrameRef, origins: Origin[]): FrameRef {
    return 'held' in ref ? { held: origins[ref.held].slot } : ref;
  }
}

/** A plain kept history frame of the current cache (what can be thinned and packed). */
function isWholeHeldFrame(slot: PlannedSlot, heldCount: number): boolean {
  const term = slot.terms[0];
  return (
    slot.role === 'history' &&
    !slot.ownPositions &&
    !slot.packed &&
    slot.terms.length === 1 &&
    term.weight === 1 &&
    'held' in term.ref &&
    term.ref.held < heldCount
  );
}
