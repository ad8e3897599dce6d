/**
 * One stream's cache decisions, in the order the loop needs them (no tensors, no engine calls):
 *
 *   const { plan, update, compress } = cache.beginBlock(f0, F);  // engine.updateCache(update)
 *   // steps attend with framePositions = plan.queryPositions
 *   if (compress) {                                      // first step kept its queries (cache.reduce)
 *     const { queries, reduce } = cache.scoreRequest(firstStepQueries);
 *     const scores = await engine.scoreCache(queries, reduce);
 *     ({ plan, update } = cache.compress(scores, f0, F)); // engine.updateCache(update); later steps
 *   }                                                     // and the clean pass use the new plan's positions
 *   // clean pass with keepBlockKv and keepQueries: cache.reduce
 *   for (const id of cache.endBlock(f0, F, cleanPassQueries)) engine.releaseQueries(id);
 *
 * With participative compression the policy is the wrapper of src/cache/participative.ts; this
 * class keeps the query handles its scores need (the first step's, and recent clean passes').
 *
 * A prompt switch (after beginBlock): `cache.planPromptRecache(plan, ...)`, executed by the loop as
 * src/cache/prompt-recache.ts says. A retune: `retuneStreamCache` (src/cache/create-policy.ts).
 */
import type { CacheUpdate, QuerySelection } from '../engine/types.js';
import { ParticipativePolicy } from './participative.js';
import type { CacheLedger } from './ledger.js';
import type { BlockPlan, CachePolicy, HeldFrame } from './types.js';
import { planPromptRecache, type PromptRecachePlan } from './prompt-recache.js';

export interface CacheStep {
  plan: BlockPlan;
  update: CacheUpdate;
}

export interface BlockStep extends CacheStep {
  /** Participative compression runs after the block's first step (which keeps its queries). */
  compress: boolean;
}

export class StreamCache {
  readonly policy: CachePolicy;
  readonly ledger: CacheLedger;
  /** The participative wrapper, when the policy is one. */
  readonly compression: ParticipativePolicy | undefined;
  /** Query handles kept by recent clean passes, newest first. */
  private cleanQueries: number[];

  /** `keptQueries`: the clean-pass query handles a retuned cache takes over (newest first). */
  constructor(policy: CachePolicy, ledger: CacheLedger, keptQueries: readonly number[] = []) {
    this.policy = policy;
    this.ledger = ledger;
    this.compression = policy instanceof ParticipativePolicy ? policy : undefined;
    this.cleanQueries = [...keptQueries];
  }

  /** The cache as the block attends it (policy view). */
  get held(): readonly HeldFrame[] {
    return this.ledger.held;
  }

  /** How the scores aggregate queries ('none' without compression: keep no queries). */
  get reduce(): 'none' | 'sum' | 'max' {
    return this.compression?.reduce ?? 'none';
  }

  /** Clean-pass query handles still kept, newest first. */
  get keptQueries(): readonly number[] {
    return this.cleanQueries;
  }

  beginBlock(blockStart: number, blockFrames: number): BlockStep {
    const plan = this.policy.planBlock(this.ledger.planInput(blockStart, blockFrames));
    const compress = this.compression?.overflows(plan) ?? false;
    return { plan, update: this.ledger.applyPlan(plan), compress };
  }

  /** What the engine scores for a compression: the first step's queries and recent clean passes'. */
  scoreRequest(firstStepQueries: number): { queries: QuerySelection[]; reduce: 'sum' | 'max' } {
    if (!this.compression) throw new Error(`${this.policy.name}: no participative compression is configured`);
    const queries = this.compression
      .queryWindows()
      .map((w) => ({ queriesId: w.blocksAgo === 0 ? firstStepQueries : this.cleanQueries[w.blocksAgo - 1], frames: w.frames }))
      .filter((s): s is QuerySelection => s.queriesId !== undefined);
    return { queries, reduce: this.compression.reduce };
  }

  /** Participative compression at the first step of a block whose `beginBlock` said `compress`. */
  compress(scores: Float32Array, blockStart: number, blockFrames: number): CacheStep {
    if (!this.compression) throw new Error(`${this.policy.name}: no participative compression is configured`);
    const plan = this.compression.planCompression({ scores, held: this.ledger.held, blockStart, blockFrames });
    return { plan, update: this.ledger.applyPlan(plan) };
  }

  /**
   * The block's clean pass kept its K/V as the engine's pending rows (and its queries under
   * `queriesId` when it kept them). Returns the query handles no compression will score any more
   * (all of them once a retune turned compression off): the engine may release them.
   */
  endBlock(blockStart: number, blockFrames: number, queriesId?: number): number[] {
    this.ledger.addPending(blockStart, blockFrames);
    if (queriesId !== undefined) this.cleanQueries.unshift(queriesId);
    const keep = Math.max(0, ...(this.compression?.queryWindows() ?? []).map((w) => w.blocksAgo));
    return this.cleanQueries.splice(keep);
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
