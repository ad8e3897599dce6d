/**
 * A test engine that holds no tensors, only the cache's row counts as the engine contract moves them (a clean
 * pass leaves its block's rows pending, an update sets the rows and consumes the pending ones, a reset empties
 * both). Each suite gives the flow and watches the calls through hooks.
 */
import type { CacheUpdate, Engine, ForwardRequest } from '../../../src/engine/types.js';

export interface RowCountingHooks {
  name: string;
  /** The forward's flow; `rows`: the cache rows it attends. */
  flow(request: ForwardRequest, rows: number): Float32Array;
  /** First thing a forward does (may wait, to let other work interleave). */
  onForward?(request: ForwardRequest, rows: number): void | Promise<void>;
  /** The handle of the queries a forward kept (undefined: none). */
  queriesId?(request: ForwardRequest): number | undefined;
  /** Before an update is applied, with the rows and pending rows it applies to (throw to refuse it). */
  onUpdate?(update: CacheUpdate, before: { rows: number; pending: number }): void;
  onReset?(): void;
  /** scoreCache's answer for `rows` cache rows (default: empty). */
  scores?(rows: number): Float32Array;
  /** Tokens of a latent frame (the tiny default shape's 64). */
  tokensPerFrame?: number;
}

export function rowCountingEngine(hooks: RowCountingHooks): Engine {
  const tokensPerFrame = hooks.tokensPerFrame ?? 64;
  let rows = 0;
  let pending = 0;
  return {
    name: hooks.name,
    async setPrompt() {},
    async forward(r) {
      await hooks.onForward?.(r, rows);
      if (r.keepBlockKv) pending = r.timesteps.length * tokensPerFrame;
      const flow = hooks.flow(r, rows);
      const queriesId = hooks.queriesId?.(r);
      return queriesId === undefined ? { flow } : { flow, queriesId };
    },
    async updateCache(u) {
      hooks.onUpdate?.(u, { rows, pending });
      rows = u.rows;
      pending = 0;
    },
    async scoreCache() {
      return hooks.scores?.(rows) ?? new Float32Array(0);
    },
    async releaseQueries() {},
    async resetCache() {
      rows = 0;
      pending = 0;
      hooks.onReset?.();
    },
    async readCache() {
      return { keys: new Float32Array(0), values: new Float32Array(0), positions: new Float32Array(0), rows };
    },
    info: () => ({ name: hooks.name, provider: 'test', cacheRows: rows, pendingRows: pending }),
    async close() {},
  };
}
