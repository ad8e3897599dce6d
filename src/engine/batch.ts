/**
 * Several streams' forwards at once: one batched call where their engines can join one (the same batchKey and a
 * forwardBatch), else each engine's own forward, all issued together (each engine serialises its own calls).
 */
import type { BatchedForward, ForwardResult } from './types.js';

/** Whether `items` can run as one forwardBatch call. */
export function canBatch(items: readonly BatchedForward[]): boolean {
  if (items.length < 2) return false;
  const first = items[0].engine;
  if (first.batchKey === undefined || first.batchKey === '' || typeof first.forwardBatch !== 'function') return false;
  const engines = new Set(items.map((i) => i.engine));
  return engines.size === items.length && items.every((i) => i.engine.batchKey === first.batchKey);
}

/** The items' results in order: one forwardBatch call when canBatch(items), else every engine's forward. */
export function forwardTogether(items: readonly BatchedForward[]): Promise<ForwardResult[]> {
  if (canBatch(items)) return items[0].engine.forwardBatch!([...items]);
  return Promise.all(items.map((i) => i.engine.forward(i.request)));
}
