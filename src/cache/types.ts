/**
 * Cache policies decide; the ledger (src/cache/ledger.ts) lowers decisions to an engine `CacheUpdate`;
 * engines move tensors. A policy sees frames, never tensors.
 *
 * Timeline of one block b (frames f0 .. f0+F-1):
 *   1. plan = policy.planBlock({ held, incoming, blockStart: f0, blockFrames: F })
 *        held     = what the cache holds now, in row order
 *        incoming = the previous block's frames from its clean pass (pending rows in the engine)
 *      plan.slots is the new cache in row order (what stays, what enters, what is blended, at which
 *      positions); plan.queryPositions are the block's own frame positions.
 *   2. denoising steps attend to [cache ‖ block];
 *      with participative compression (src/cache/participative.ts, a wrapper around any policy),
 *      the first step of a block that would overflow the window keeps its queries, the engine
 *      scores the cache, and the wrapper plans the compressed cache: a second `BlockPlan` whose
 *      top-C slots take their tokens row by row, per layer (`{ tokens }` refs). The ledger lowers
 *      both plans the same way.
 *   3. the clean pass's K/V become the pending rows = next block's `incoming`.
 */

export type SlotRole = 'sink' | 'history' | 'compressed' | 'sparse';

/** One latent frame's worth of rows in the cache (T tokens). */
export interface HeldFrame {
  /**
   * Latent-frame index in the video this slot came from (an EMA sink slot: the frame it started as;
   * a 'compressed' slot: its nominal frame, the place participative compression packed it at, just
   * before the recent frames).
   */
  frame: number;
  role: SlotRole;
  /** Temporal RoPE position the slot is attended at (for 'compressed' slots: see `ownPositions`). */
  position: number;
  /**
   * true for slots whose tokens keep their own per-token positions (participative compression's
   * top-C tokens): `position` is then informational, and re-placing them is not done by the policy.
   */
  ownPositions?: boolean;
  /**
   * A 'sparse' slot (src/cache/sparse.ts): the frames whose thinned tokens it packs, oldest first
   * (`frame` is the first of them; `position` the lowest of its tokens').
   */
  packed?: number[];
}

/** A frame of the previous block waiting to enter the cache. */
export interface IncomingFrame {
  frame: number;
}

/**
 * Where a slot's rows come from: a held slot, a pending (incoming) frame, or single tokens of the
 * current cache chosen per layer (participative compression: `tokens[layer]` holds the T rows).
 */
export type FrameRef = { held: number } | { incoming: number } | { tokens: Int32Array[] };

/** A new cache slot: a weighted sum of held / incoming frames (one term = a plain keep). */
export interface PlannedSlot {
  terms: Array<{ ref: FrameRef; weight: number }>;
  frame: number;
  role: SlotRole;
  position: number;
  ownPositions?: boolean;
  /** See HeldFrame.packed. */
  packed?: number[];
  /**
   * [T] temporal position of each of the slot's tokens, in row order, when they differ within the
   * slot (a sparse slot's tokens sit where the policy places the frames they came from); `position`
   * is then informational. Final positions: not moved by the table shift again.
   */
  tokenPositions?: Float32Array;
}

export interface BlockPlan {
  /** The cache for this block, in row order. */
  slots: PlannedSlot[];
  /** [F] temporal positions of the block's frames. */
  queryPositions: number[];
  /**
   * How far every position of the policy's unbounded timeline was moved down to keep the block
   * below the RoPE table end (src/cache/rope-table.ts); 0 until the stream reaches the table end,
   * then it grows with the stream. Slots with `ownPositions` keep their per-token positions, moved
   * down by the growth of this shift since the last plan and held at `ownPositionFloor`.
   */
  positionShift: number;
  /** Lowest temporal position a token with its own position may take after the shift. */
  ownPositionFloor: number;
}

export interface PlanInput {
  held: readonly HeldFrame[];
  incoming: readonly IncomingFrame[];
  blockStart: number;
  blockFrames: number;
  /**
   * Evict nothing: keep every held and incoming frame, placed as the policy places them (asked by
   * the participative wrapper, which decides itself what leaves).
   */
  keepAll?: boolean;
}

export interface CachePolicy {
  readonly name: string;
  planBlock(input: PlanInput): BlockPlan;
}
