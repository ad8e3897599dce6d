/**
 * Participative compression (Deep Forcing): when a block's keys would exceed the window, keep only
 * the tokens that recent queries attend to.
 *
 * Budget N frames' worth of tokens = sink S + top-C + recent R, where R counts the current block:
 * the cache keeps its sink slots, its last R - F frames, and C = N - R - S frames' worth of tokens
 * (C * T rows) chosen per layer from the rest (non-sink, non-recent) by the scores of
 * `Engine.scoreCache` ([layers, rows], one keep-set per layer shared by heads). The new rows are
 * packed [sink ‖ top-C ‖ recent]; the top-C tokens keep their time order and are cut into C slots
 * of T tokens (role 'compressed').
 *
 * Positions of the kept tokens:
 *  - own (default, absolute-position policies: window, sink/absolute, deep-sink): each token keeps
 *    its own (frame, row, column) position (`ownPositions` slots);
 *  - rephase (option, paper eq. 10-11; or implied when the policy re-indexes the cache, i.e.
 *    sink/cache): the C slots are placed on the C frames right before the recent frames, each token
 *    keeping its own row and column.
 *
 * One wrapper around any base policy (`ParticipativePolicy`): the base policy plans every block
 * without evicting (`keepAll`: it would evict exactly what compression selects from), so the cache
 * holds up to W frames at the first step of a block whose keys would exceed the window
 * (`overflows`). After that step, `planCompression` selects the tokens and lets the base policy
 * place the selected cache (its sink re-alignment, its re-indexing, the RoPE table); the result is
 * an ordinary `BlockPlan` whose top-C slots take their tokens per layer (`{ tokens }` refs), lowered
 * by the ledger like any other plan. ema-sink does not combine (cacheConfigProblems refuses it): EMA
 * fuses whole frames token by token as they leave, compression drops single tokens, so nothing
 * would ever reach the sink.
 */
import type { BlockPlan, CachePolicy, HeldFrame, PlanInput, PlannedSlot } from './types.js';

export interface ParticipativeOptions {
  /** W: latent frames attended per block, the block included (the base policy's window). */
  window: number;
  /** N: frames' worth of tokens attended after compression (sink + top-C + recent). */
  budget: number;
  /** R: recent frames kept whole, the current block included. */
  recent: number;
  /** S: sink frames of the base policy (0 for `window`). */
  sink: number;
  blockFrames: number;
  tokensPerFrame: number;
  layers: number;
  score: 'sum' | 'max';
  /** Place the top-C tokens on the frames right before the recent ones. */
  rephase: boolean;
  /** The base policy re-indexes the cache by place (sink/cache): kept tokens cannot keep old positions. */
  reindexed: boolean;
}

/** Whose queries the scores sum: the current block's first step (blocksAgo 0) and earlier clean passes. */
export interface QueryWindow {
  blocksAgo: number;
  /** [start, end) in block-frame units of that pass. */
  frames: [number, number];
}

export interface SelectInput {
  /** [layers, rows] scores of the current rows (`Engine.scoreCache`). */
  scores: Float32Array;
  /** The cache now (after the block's plan was applied), in row order. */
  held: readonly HeldFrame[];
  blockStart: number;
}

/** The selected cache: its slots in new row order, each with the rows its tokens come from. */
export interface TokenSelection {
  /** The held-frame view of the cache after the selection. */
  held: HeldFrame[];
  /** Per new slot: a whole current slot (sink, recent), or per-layer rows of single tokens (top-C). */
  sources: Array<{ held: number } | { tokens: Int32Array[] }>;
}

export class ParticipativePolicy implements CachePolicy {
  readonly name: string;
  readonly base: CachePolicy;
  readonly options: ParticipativeOptions;
  /** C: frames' worth of top tokens. */
  readonly topFrames: number;

  constructor(base: CachePolicy, options: ParticipativeOptions) {
    this.base = base;
    this.name = `${base.name}+participative`;
    this.options = options;
    this.topFrames = options.budget - options.recent - options.sink;
    if (this.topFrames < 1) throw new RangeError(`participative: budget ${options.budget} leaves no top-C frames after recent ${options.recent} and sink ${options.sink}`);
    if (options.recent < options.blockFrames) throw new RangeError(`participative: recent ${options.recent} is smaller than the block (${options.blockFrames} frames)`);
  }

  get reduce(): 'sum' | 'max' {
    return this.options.score;
  }

  /** The base policy's plan with nothing evicted. */
  planBlock(input: PlanInput): BlockPlan {
    return this.base.planBlock({ ...input, keepAll: true });
  }

  /** The plan's cache and block exceed the window: compress after the block's first step. */
  overflows(plan: BlockPlan): boolean {
    return plan.slots.length + plan.queryPositions.length > this.options.window;
  }

  /**
   * The compressed cache, from the first step's scores of the cache as it is now: the selection,
   * placed by the base policy (nothing evicted, nothing incoming).
   */
  planCompression(input: SelectInput & { blockFrames: number }): BlockPlan {
    const selection = this.select(input);
    const placed = this.base.planBlock({ held: selection.held, incoming: [], blockStart: input.blockStart, blockFrames: input.blockFrames, keepAll: true });
    const slots = placed.slots.map((slot): PlannedSlot => {
      const ref = slot.terms[0].ref;
      if (slot.terms.length !== 1 || slot.terms[0].weight !== 1 || !('held' in ref)) {
        throw new Error(`${this.base.name}: a compressed cache may only be kept and placed, not blended`);
      }
      return { ...slot, terms: [{ ref: selection.sources[ref.held], weight: 1 }] };
    });
    return { ...placed, slots };
  }

  /** Kept tokens keep their own positions (else they are placed right before the recent frames). */
  get ownPositions(): boolean {
    return !this.options.rephase && !this.options.reindexed;
  }

  /**
   * The R recent frames' queries: the current block's first step, then the last R - F frames of the
   * previous clean passes (newest first). The stream cache keeps the clean-pass queries of that many
   * blocks (src/cache/stream-cache.ts).
   */
  queryWindows(): QueryWindow[] {
    const F = this.options.blockFrames;
    const windows: QueryWindow[] = [{ blocksAgo: 0, frames: [0, F] }];
    let left = this.options.recent - F;
    for (let ago = 1; left > 0; ago++) {
      const take = Math.min(F, left);
      windows.push({ blocksAgo: ago, frames: [F - take, F] });
      left -= take;
    }
    return windows;
  }

  select(input: SelectInput): TokenSelection {
    const { layers, tokensPerFrame: T, blockFrames: F } = this.options;
    const held = input.held;
    const rows = held.length * T;
    if (input.scores.length !== layers * rows) {
      throw new RangeError(`participative: expected ${layers} x ${rows} scores, got ${input.scores.length}`);
    }
    const sinkSlots: number[] = [];
    const nonSink: number[] = [];
    held.forEach((h, i) => (h.role === 'sink' ? sinkSlots : nonSink).push(i));
    const recentCount = Math.min(this.options.recent - F, nonSink.length);
    const recentSlots = nonSink.slice(nonSink.length - recentCount);
    const candidateSlots = nonSink.slice(0, nonSink.length - recentCount);
    const keepTokens = Math.min(this.topFrames, candidateSlots.length) * T;
    const C = keepTokens / T;

    const candidateRows = new Int32Array(candidateSlots.length * T);
    candidateSlots.forEach((s, i) => {
      for (let t = 0; t < T; t++) candidateRows[i * T + t] = s * T + t;
    });
    // top[l]: layer l's C*T chosen rows in time order, cut into C slots of T tokens.
    const top: Int32Array[] = [];
    for (let l = 0; l < layers; l++) top.push(topRows(candidateRows, input.scores.subarray(l * rows, (l + 1) * rows), keepTokens));

    const firstRecentFrame = recentSlots.length ? held[recentSlots[0]].frame : input.blockStart;
    const compressed: HeldFrame[] = Array.from({ length: C }, (_, j) => {
      const frame = firstRecentFrame - C + j;
      const slot: HeldFrame = { frame, role: 'compressed', position: frame };
      if (this.ownPositions) slot.ownPositions = true;
      return slot;
    });
    return {
      held: [...sinkSlots.map((s) => ({ ...held[s] })), ...compressed, ...recentSlots.map((s) => ({ ...held[s] }))],
      sources: [
        ...sinkSlots.map((s) => ({ held: s })),
        ...compressed.map((_, j) => ({ tokens: top.map((rowsOfLayer) => rowsOfLayer.subarray(j * T, (j + 1) * T)) })),
        ...recentSlots.map((s) => ({ held: s })),
      ],
    };
  }
}

/**
 * The `count` candidate rows of highest score, in ascending row order (time order). Ties at the
 * threshold go to the lower row; NaN scores count as lowest.
 */
export function topRows(candidates: Int32Array, scores: Float32Array, count: number): Int32Array {
  if (count >= candidates.length) return candidates.slice();
  if (count <= 0) return new Int32Array(0);
  const values = new Float32Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    const v = scores[candidates[i]];
    values[i] = Number.isNaN(v) ? -Infinity : v;
  }
  const threshold = kthLargest(values.slice(), count);
  let above = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > threshold) above++;
  let ties = count - above;
  const out = new Int32Array(count);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > threshold || (values[i] === threshold && ties-- > 0)) out[n++] = candidates[i];
  }
  return out; // filled in candidate order, which is ascending
}

/** The k-th largest value (k from 1), by three-way quickselect; reorders `values`. */
function kthLargest(values: Float32Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  let want = k - 1; // index in descending order
  for (;;) {
    if (lo === hi) return values[lo];
    const pivot = median3(values[lo], values[(lo + hi) >>> 1], values[hi]);
    // [lo, gt): > pivot, [gt, i): == pivot, (lt, hi]: < pivot
    let gt = lo;
    let i = lo;
    let lt = hi;
    while (i <= lt) {
      const v = values[i];
      if (v > pivot) {
        values[i] = values[gt];
        values[gt++] = v;
        i++;
      } else if (v < pivot) {
        values[i] = values[lt];
        values[lt--] = v;
      } else i++;
    }
    if (want < gt - lo) hi = gt - 1;
    else if (want < i - lo) return pivot;
    else {
      want -= i - lo;
      lo = i;
    }
  }
}

function median3(a: number, b: number, c: number): number {
  return a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
}
