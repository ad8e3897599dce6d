/**
 * One stream's cache decisions, in the order the loop needs them (no tensors, no engine calls):
 *
 *   const { plan, update } = cache.beginBlock(f0, F);   // engine.updateCache(update)
 *   // steps attend with framePositions = plan.queryPositions
 *   if (plan.compress) {                                 // first step kept its queries (cache.reduce)
 *     const scores = await engine.scoreCache(queries for cache.queryWindows(), cache.reduce);
 *     ({ plan, update } = cache.compress(scores, f0, F)); // engine.updateCache(update); later steps
 *   }                                                     // and the clean pass use the new plan's positions
 *   // clean pass with keepBlockKv (and its queries kept when compression is on)
 *   cache.endBlock(f0, F);
 *
 * A prompt switch (after beginBlock): `cache.planPromptRecache(plan, ...)`, executed by the loop as
 * src/cache/prompt-recache.ts says. A retune: `retuneStreamCache` (src/cache/create-policy.ts).
 */
import type { CacheUpdate } from '../engine/types.js';
import type { ParticipativeCompressor, QueryWindow } from './participative.js';
import type { CacheLedger } from './ledger.js';
import type { BlockPlan, CachePolicy, HeldFrame } from './types.js';
import { planPromptRecache, type PromptRecachePlan } from './prompt-recache.js';

export interface CacheStep {
  plan: BlockPlan;
  update: CacheUpdate;
}

export class StreamCache {
  readonly policy: CachePolicy;
  readonly ledger: CacheLedger;
  readonly compressor: ParticipativeCompressor | undefined;

  constructor(policy: CachePolicy, ledger: CacheLedger, compressor?: ParticipativeCompressor) {
    this.policy = policy;
    this.ledger = ledger;
    this.compressor = compressor;
  }

  /** The cache as the block attends it (policy view). */
  get held(): readonly HeldFrame[] {
    return this.ledger.held;
  }

  /** How the scores aggregate queries ('none' without compression: keep no queries). */
  get reduce(): 'none' | 'sum' | 'max' {
    return this.compressor?.reduce ?? 'none';
  }

  /** Which passes' queries the compression scores need (empty without compression). */
  queryWindows(): QueryWindow[] {
    return this.compressor?.queryWindows() ?? [];
  }

  beginBlock(blockStart: number, blockFrames: number): CacheStep {
    const plan = this.policy.planBlock(this.ledger.planInput(blockStart, blockFrames));
    if (plan.compress && !this.compressor) throw new Error(`${this.policy.name}: plan asks for compression, none is configured`);
    return { plan, update: this.ledger.applyPlan(plan) };
  }

  /** Participative compression at the first step of a block whose plan said `compress`. */
  compress(scores: Float32Array, blockStart: number, blockFrames: number): CacheStep {
    if (!this.compressor) throw new Error('compress: no compressor configured');
    const selection = this.compressor.select({ scores, held: this.ledger.held, blockStart });
    const plan = this.policy.planBlock({ held: selection.held, incoming: [], blockStart, blockFrames });
    return { plan, update: this.ledger.applySelection(selection, plan) };
  }

  /** The block's clean pass kept its K/V as the engine's pending rows. */
  endBlock(blockStart: number, blockFrames: number): void {
    this.ledger.addPending(blockStart, blockFrames);
  }

  /**
   * A prompt switch's re-cache of the cache as `blockPlan` left it (src/cache/prompt-recache.ts);
   * null when nothing is rebuilt. `hasLatent`: whether the loop kept a frame's clean latent.
   */
  planPromptRecache(blockPlan: BlockPlan, hasLatent: (frame: number) => boolean): PromptRecachePlan | null {
    return planPromptRecache(this.ledger.held, blockPlan, hasLatent);
  }

  /** Lowers one of a re-cache's plans (`keepSink`, then `restore`) to the engine's update. */
  apply(plan: BlockPlan): CacheUpdate {
    return this.ledger.applyPlan(plan);
  }

  /** The re-cache's forward kept the re-run frames' K/V as the engine's pending rows. */
  endRerun(recache: PromptRecachePlan): void {
    this.ledger.addPending(recache.rerun.frames[0], recache.rerun.frames.length);
  }

  reset(): void {
    this.ledger.reset();
  }
}
