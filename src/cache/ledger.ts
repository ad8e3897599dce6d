/**
 * The cache ledger: the host-side record of what the engine's cache holds (it owns no memory; the
 * engine holds the K/V rows). Which frames the rows hold (policy view), the frames
 * pending from the last clean pass, and every row's RoPE position (frame, row, column) per layer.
 * It lowers a policy's `BlockPlan` into the engine's `CacheUpdate` (a few integers per row) and
 * never touches K/V tensors.
 *
 * Rows: held slot s occupies rows [s*T, (s+1)*T); pending frame i occupies pending rows
 * [i*T, (i+1)*T). A token's row and column positions are its place in the frame's token grid
 * (gridHeight x gridWidth); tokens kept by compression carry theirs along.
 */
import type { CacheUpdate } from '../engine/types.js';
import type { BlockPlan, FrameRef, HeldFrame, IncomingFrame, PlanInput, PlannedSlot } from './types.js';
import { concatFloat32 } from '../util/float32.js';

export interface LedgerDims {
  layers: number;
  tokensPerFrame: number;
  gridHeight: number;
  gridWidth: number;
}

export class CacheLedger {
  readonly dims: LedgerDims;
  private heldFrames: HeldFrame[] = [];
  private pendingFrames: IncomingFrame[] = [];
  /** Per layer [rows, 3]; all entries are the same array while every layer agrees. */
  private rowPositions: Float32Array[];
  private shift = 0;
  private grid: Float32Array | undefined;

  constructor(dims: LedgerDims) {
    if (dims.gridHeight * dims.gridWidth !== dims.tokensPerFrame) {
      throw new RangeError(`ledger: token grid ${dims.gridHeight}x${dims.gridWidth} does not hold ${dims.tokensPerFrame} tokens`);
    }
    this.dims = dims;
    this.rowPositions = this.sharedPositions(new Float32Array(0));
  }

  get held(): readonly HeldFrame[] {
    return this.heldFrames;
  }

  get pending(): readonly IncomingFrame[] {
    return this.pendingFrames;
  }

  get rows(): number {
    return this.heldFrames.length * this.dims.tokensPerFrame;
  }

  get pendingRows(): number {
    return this.pendingFrames.length * this.dims.tokensPerFrame;
  }

  /** true while layers hold different tokens (after participative compression). */
  get perLayer(): boolean {
    return this.heldFrames.some((h) => h.role === 'compressed');
  }

  /** [rows, 3] positions (frame, row, column) of one layer's rows, as the engine holds them. */
  positions(layer: number): Float32Array {
    return this.rowPositions[layer];
  }

  planInput(blockStart: number, blockFrames: number): PlanInput {
    return { held: this.heldFrames, incoming: this.pendingFrames, blockStart, blockFrames };
  }

  /** The clean pass of a block kept its K/V: those frames wait to enter the cache. */
  addPending(firstFrame: number, frames: number): void {
    if (this.pendingFrames.length) throw new Error('ledger: pending rows were not consumed by updateCache');
    this.pendingFrames = Array.from({ length: frames }, (_, i) => ({ frame: firstFrame + i }));
  }

  reset(): void {
    this.heldFrames = [];
    this.pendingFrames = [];
    this.rowPositions = this.sharedPositions(new Float32Array(0));
    this.shift = 0;
  }

  /**
   * Lowers a block plan into the update that builds the plan's cache from [current rows ‖ pending
   * rows]: the block's plan, a prompt re-cache's plans and participative compression's plan alike.
   * While any slot holds different tokens per layer (role 'compressed', or `tokens` refs), the
   * update carries one table per layer.
   */
  applyPlan(plan: BlockPlan): CacheUpdate {
    const T = this.dims.tokensPerFrame;
    const current = this.rows;
    const terms = Math.max(1, ...plan.slots.map((s) => s.terms.length));
    const rows = plan.slots.length * T;
    const after = this.heldAfter(plan.slots);
    // Token refs that take the same rows in every layer (a sparse slot's fixed pattern) keep one table.
    const perLayer =
      after.some((h) => h.role === 'compressed') ||
      plan.slots.some((s) => s.terms.some(({ ref }) => 'tokens' in ref && ref.tokens.some((rows) => rows !== ref.tokens[0])));
    const tables = perLayer ? this.dims.layers : 1;
    for (const slot of plan.slots) {
      if (slot.ownPositions) this.checkOwnSlot(slot);
      if (slot.tokenPositions && slot.tokenPositions.length !== T) {
        throw new RangeError(`ledger: a slot has ${slot.tokenPositions.length} token positions, expected ${T}`);
      }
      for (const { ref } of slot.terms) this.checkRef(ref, current);
    }
    const sources = new Int32Array(tables * rows * terms);
    const weights = new Float32Array(tables * rows * terms);
    const delta = plan.positionShift - this.shift;
    const layerPositions: Float32Array[] = [];
    for (let l = 0; l < tables; l++) {
      const at = l * rows * terms;
      const pos = new Float32Array(rows * 3);
      const old = this.rowPositions[l];
      for (let s = 0; s < plan.slots.length; s++) {
        const slot = plan.slots[s];
        for (let k = 0; k < slot.terms.length; k++) {
          const { ref, weight } = slot.terms[k];
          for (let t = 0, i = at + s * T * terms + k; t < T; t++, i += terms) {
            sources[i] = 'tokens' in ref ? ref.tokens[l][t] : this.firstRow(ref, current) + t;
            weights[i] = weight;
          }
        }
        // Row and column travel with the token (a held row's stored ones; an incoming frame's grid).
        const ref = slot.terms[0].ref;
        if ('held' in ref) pos.set(old.subarray(ref.held * T * 3, (ref.held + 1) * T * 3), s * T * 3);
        else if ('incoming' in ref) pos.set(this.gridPositions(), s * T * 3);
        else for (let t = 0; t < T; t++) pos.set(old.subarray(ref.tokens[l][t] * 3, ref.tokens[l][t] * 3 + 3), (s * T + t) * 3);
        const end = (s + 1) * T * 3;
        if (slot.ownPositions) for (let o = s * T * 3; o < end; o += 3) pos[o] = Math.max(plan.ownPositionFloor, pos[o] - delta);
        else if (slot.tokenPositions) for (let t = 0; t < T; t++) pos[(s * T + t) * 3] = slot.tokenPositions[t];
        else for (let o = s * T * 3; o < end; o += 3) pos[o] = slot.position;
      }
      layerPositions.push(pos);
    }
    this.commit(after, layerPositions, perLayer, plan);
    this.pendingFrames = [];
    return { rows, terms, perLayer, sources, weights, positions: perLayer ? concatFloat32(layerPositions) : layerPositions[0] };
  }

  private sharedPositions(table: Float32Array): Float32Array[] {
    return Array.from({ length: this.dims.layers }, () => table);
  }

  /** First row of a held slot or a pending frame in [current rows ‖ pending rows]. */
  private firstRow(ref: { held: number } | { incoming: number }, currentRows: number): number {
    return 'held' in ref ? ref.held * this.dims.tokensPerFrame : currentRows + ref.incoming * this.dims.tokensPerFrame;
  }

  private checkRef(ref: FrameRef, currentRows: number): void {
    if ('held' in ref) {
      if (ref.held < 0 || ref.held >= this.heldFrames.length) throw new RangeError(`ledger: plan refers to held slot ${ref.held} of ${this.heldFrames.length}`);
    } else if ('incoming' in ref) {
      if (ref.incoming < 0 || ref.incoming >= this.pendingFrames.length) {
        throw new RangeError(`ledger: plan refers to incoming frame ${ref.incoming} of ${this.pendingFrames.length}`);
      }
    } else {
      const { layers, tokensPerFrame: T } = this.dims;
      if (ref.tokens.length !== layers) throw new RangeError(`ledger: a tokens ref has ${ref.tokens.length} layers, expected ${layers}`);
      for (const rows of ref.tokens) {
        if (rows.length !== T) throw new RangeError(`ledger: a tokens ref has ${rows.length} rows in a layer, expected ${T}`);
        for (const src of rows) if (!(src >= 0 && src < currentRows)) throw new RangeError(`ledger: token row ${src} outside the cache (${currentRows} rows)`);
      }
    }
  }

  /** [T, 3] (0, row, column) of a frame's tokens in grid order. */
  private gridPositions(): Float32Array {
    if (!this.grid) {
      const { tokensPerFrame: T, gridWidth: w } = this.dims;
      this.grid = new Float32Array(T * 3);
      for (let t = 0; t < T; t++) {
        this.grid[t * 3 + 1] = Math.floor(t / w);
        this.grid[t * 3 + 2] = t % w;
      }
    }
    return this.grid;
  }

  private checkOwnSlot(slot: PlannedSlot): void {
    const ref = slot.terms[0].ref;
    if (slot.terms.length !== 1 || slot.terms[0].weight !== 1 || 'incoming' in ref) {
      throw new Error('ledger: a slot with its own positions can only be kept, not blended or taken from pending rows');
    }
  }

  private heldAfter(slots: PlannedSlot[]): HeldFrame[] {
    return slots.map((s) => {
      const h: HeldFrame = { frame: s.frame, role: s.role, position: s.position };
      if (s.ownPositions) h.ownPositions = true;
      if (s.packed) h.packed = [...s.packed];
      return h;
    });
  }

  private commit(held: HeldFrame[], layerPositions: Float32Array[], perLayer: boolean, plan: BlockPlan): void {
    this.heldFrames = held;
    this.rowPositions = perLayer ? layerPositions : this.sharedPositions(layerPositions[0]);
    this.shift = plan.positionShift;
    // An own-position slot's `position` is informational: report its oldest token in layer 0.
    const T = this.dims.tokensPerFrame;
    held.forEach((h, s) => {
      if (!h.ownPositions) return;
      let min = Infinity;
      for (let t = 0; t < T; t++) min = Math.min(min, this.rowPositions[0][(s * T + t) * 3]);
      h.position = min;
    });
  }
}
