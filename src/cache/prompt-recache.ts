/**
 * A prompt switch's KV re-cache (LongLive), planned on what the cache holds once the block's plan is
 * applied (so the cache is exactly what the block attends to). The sink rows stay as they are; the
 * history frames whose clean latents the loop still has are re-run once at t = 0 under the new
 * prompt (attending to the sink) and their rebuilt rows go back at the same positions. Tokens kept
 * by participative compression are not whole frames and cannot be re-run: they are dropped (the
 * next blocks refill the history), as are history frames without a latent.
 *
 * The loop executes the plan in order:
 *   engine.updateCache(cache.apply(recache.keepSink));
 *   engine.forward({ latents of recache.rerun.frames, framePositions: recache.rerun.positions, t = 0, keepBlockKv });
 *   cache.endRerun(recache);  engine.updateCache(cache.apply(recache.restore));
 */
import type { BlockPlan, HeldFrame, PlannedSlot } from './types.js';

export interface PromptRecachePlan {
  /** First: the cache keeps its sink slots only, where they are. */
  keepSink: BlockPlan;
  /** Then: these frames' clean latents run once at t = 0 under the new prompt, keeping their K/V. */
  rerun: {
    /** Consecutive latent-frame indices, oldest first. */
    frames: number[];
    /** The temporal position each frame is attended at (its held position). */
    positions: number[];
  };
  /** Last: the sink, then the re-run frames (the pending rows) at their old positions. */
  restore: BlockPlan;
}

/**
 * `held`: the cache now, in row order; `blockPlan`: the plan the block attends with (its query
 * positions and table shift stay in force); `hasLatent`: whether the loop kept a frame's clean latent.
 * null when there is nothing to rebuild (no history frame with a latent, or not one consecutive run):
 * the cache is then left as it is.
 */
export function planPromptRecache(held: readonly HeldFrame[], blockPlan: BlockPlan, hasLatent: (frame: number) => boolean): PromptRecachePlan | null {
  const sinks = held.map((h, slot) => ({ h, slot })).filter(({ h }) => h.role === 'sink');
  const rebuild = held.filter((h) => h.role === 'history' && hasLatent(h.frame));
  const consecutive = rebuild.every((h, i) => h.frame === rebuild[0].frame + i);
  if (rebuild.length === 0 || !consecutive) return null;

  const plan = (slots: PlannedSlot[]): BlockPlan => ({
    slots,
    queryPositions: blockPlan.queryPositions,
    positionShift: blockPlan.positionShift,
    ownPositionFloor: blockPlan.ownPositionFloor,
  });
  const keepSlot = (h: HeldFrame, slot: number): PlannedSlot => ({ terms: [{ ref: { held: slot }, weight: 1 }], frame: h.frame, role: h.role, position: h.position });
  return {
    keepSink: plan(sinks.map(({ h, slot }) => keepSlot(h, slot))),
    rerun: { frames: rebuild.map((h) => h.frame), positions: rebuild.map((h) => h.position) },
    restore: plan([
      ...sinks.map(({ h }, i) => keepSlot(h, i)),
      ...rebuild.map((h, i): PlannedSlot => ({ terms: [{ ref: { incoming: i }, weight: 1 }], frame: h.frame, role: h.role, position: h.position })),
    ]),
  };
}
