/** `scheduler:` — the SLO-aware block scheduler (owned by scheduler/). */
import { z } from 'zod';

export const schedulerSection = z
  .object({
    /** Target frame rate of a live stream (frames leave the playout buffer at this rate). */
    targetFps: z.number().positive().default(16),
    /** Time-to-first-frame objective, ms. */
    ttffMs: z.number().positive().default(2000),
    /** Quality ladder: the step counts a block may be degraded to, highest first. */
    stepLadder: z.array(z.number().int().positive()).min(1).default([4, 3, 2]),
  })
  .strict();
