import { blockForwards } from './cost-model.js';

/**
 * Which of a stream's unfinished blocks may run their next step in the coming forward. The batch
 * itself is assembled earliest-deadline-first by the scheduler; a batching policy only says what may
 * go together. A new way of batching is a new object here, not a flag in the scheduler.
 */

/** A block as a batching policy sees it. `step` = forwards done; the clean pass is step `steps`. */
export interface BlockProgress {
  index: number;
  step: number;
  steps: number;
}

export interface BatchingPolicy {
  readonly name: string;
  /** blocks: one stream's unfinished blocks, oldest first. Returns those that may run now. */
  runnable<B extends BlockProgress>(blocks: readonly B[]): B[];
}

/**
 * Self-Forcing order: a stream's block starts only after the previous block's clean pass (its keys
 * are in the cache). Different streams that share a model still share a forward.
 */
export const streamsBatching: BatchingPolicy = {
  name: 'streams',
  runnable(blocks) {
    return blocks.length > 0 ? [blocks[0]] : [];
  },
};

/**
 * StreamDiffusionV2's stream batch: one stream's consecutive blocks sit in the batch at different
 * denoising steps, each a step behind the one before, and every forward advances all of them.
 * A block's denoising may run while the previous block is still further along (it then sees the
 * cache as it is); its clean pass waits until the previous block is finished, so the cache still
 * receives blocks in order.
 */
export const streamBatchBatching: BatchingPolicy = {
  name: 'stream-batch',
  runnable(blocks) {
    const out: (typeof blocks)[number][] = [];
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i];
      if (i === 0) {
        out.push(block);
        continue;
      }
      const previous = blocks[i - 1];
      const clean = block.step >= block.steps;
      if (!clean && previous.step > block.step) out.push(block);
    }
    return out;
  },
};

export function batchingPolicy(name: 'streams' | 'stream-batch'): BatchingPolicy {
  return name === 'stream-batch' ? streamBatchBatching : streamsBatching;
}

/**
 * What a batch of whole blocks costs (the runtime's block granularity: each item is one stream's block, its
 * forwards joined with the other items' forwards of the same index). Forward k of the batch joins every block that
 * still has a forward k (a block at s steps has s + 1: s denoising steps and the clean pass), priced by the cost
 * model as one call over those items (its per-call overhead once, the rest per item); each block's decode (and
 * encode) is its own. A single block costs what `CostModel.blockMs` says.
 */
export interface BatchedBlock {
  queryTokens: number;
  cachedTokens: number;
  steps: number;
  latentFrames: number;
  /** Forwards of one denoising step (2 with classifier-free guidance); absent: 1. */
  forwardsPerStep?: number;
}

/** The forwards of a batch of whole blocks, ms (without decode / encode). */
export function batchedForwardsMs(forwardMs: (items: readonly BatchedBlock[]) => number, blocks: readonly BatchedBlock[]): number {
  const forwards = (b: BatchedBlock) => blockForwards(b.steps, b.forwardsPerStep);
  const most = Math.max(0, ...blocks.map(forwards));
  let ms = 0;
  for (let k = 0; k < most; k++) ms += forwardMs(blocks.filter((b) => forwards(b) > k));
  return ms;
}

/**
 * The streams that share a batch in the admission test's model: `sharers` streams of one model on a device
 * whose calls take up to `maxBatch` items run in batches of min(maxBatch, sharers), each stream paying its
 * share (1 / size) of a batch's forwards. Assumes the streams' blocks are due together, which holds when the
 * device is busy (blocks wait for it and meet there) — the case where admission is tight.
 */
export function batchSize(sharers: number, maxBatch: number): number {
  return Math.max(1, Math.min(maxBatch, sharers));
}
