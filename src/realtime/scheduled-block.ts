/**
 * One block of a scheduled stream: wait for the scheduler's turn, run the generator at the steps the
 * turn carries, report the measured times. The times reported are the generator's own measure of
 * the block (`timings.totalMs`, ending when the block reached the caller), so work on the caller's
 * thread while the block ran (sockets, ffmpeg pipes) does not count as device time.
 */
import type { FrameBlock } from '../loop/types.js';
import type { ScheduledStream, Turn } from './runtime-scheduler.js';

export interface StepsGenerator {
  next(options?: { steps?: number }): Promise<FrameBlock>;
}

export interface ScheduledBlock {
  block: FrameBlock;
  turn: Turn;
  /** When the block reached the caller (scheduler clock). */
  readyAt: number;
}

/** null: the stream may run no more blocks (it left, or the scheduler stopped it: see `stopReason`). */
export async function runScheduledBlock(stream: ScheduledStream, generator: StepsGenerator): Promise<ScheduledBlock | null> {
  const turn = await stream.next();
  if (!turn) return null;
  let block: FrameBlock;
  try {
    block = await generator.next({ steps: turn.steps });
  } catch (e) {
    stream.leave(`failed: ${(e as Error).message}`);
    throw e;
  }
  const readyAt = stream.clock.now();
  stream.done(turn, { startedAt: readyAt - block.timings.totalMs, finishedAt: readyAt });
  return { block, turn, readyAt };
}
