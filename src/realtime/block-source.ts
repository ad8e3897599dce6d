/**
 * Where render takes its blocks from: back to back at the generator's full steps (an offline render:
 * no deadline), or as one stream of a block scheduler (a real-time render: each block when the plan
 * says, at the steps the quality ladder chose). Both count the blocks by step count.
 */
import type { FrameBlock } from '../loop/types.js';
import type { ScheduledStream } from './runtime-scheduler.js';
import { runScheduledBlock, type StepsGenerator } from './scheduled-block.js';

export interface BlockSource {
  /** The next block; null when there are no more (a scheduled stream finished or was stopped). */
  next(): Promise<FrameBlock | null>;
  /** Blocks run so far, by denoising steps, e.g. { "4": 30, "3": 2 }. */
  readonly blocksBySteps: Record<string, number>;
}

function tally(counts: Record<string, number>, block: FrameBlock): FrameBlock {
  counts[block.steps] = (counts[block.steps] ?? 0) + 1;
  return block;
}

/** Every block at the generator's configured steps, as fast as it runs. */
export function offlineBlocks(generator: StepsGenerator): BlockSource {
  const blocksBySteps: Record<string, number> = {};
  return { blocksBySteps, next: async () => tally(blocksBySteps, await generator.next()) };
}

/** Blocks of one admitted stream, when its turns come. */
export function scheduledBlocks(stream: ScheduledStream, generator: StepsGenerator): BlockSource {
  const blocksBySteps: Record<string, number> = {};
  return {
    blocksBySteps,
    next: async () => {
      const ran = await runScheduledBlock(stream, generator);
      return ran ? tally(blocksBySteps, ran.block) : null;
    },
  };
}

/** "4:30 3:2": blocks by steps, most steps first. */
export function describeSteps(blocksBySteps: Readonly<Record<string, number>>): string {
  return Object.entries(blocksBySteps)
    .sort((a, b) => Number(b[0]) - Number(a[0]))
    .map(([steps, n]) => `${steps}:${n}`)
    .join(' ');
}
