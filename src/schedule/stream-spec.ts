/**
 * A real stream as the scheduler sees it: the scheduler's objectives from the config, and the rungs
 * this stream's generator can actually run. A generator's block size is fixed by its config, so the
 * stream gets that one block size; its ladder starts at the generator's full step list (the quality
 * it was configured for) and goes down through the configured ladder's smaller step counts.
 */
import type { Config } from '../config/schema.js';
import { streamSpecFromConfig, type StreamSpec } from '../../scheduler/index.js';

export interface StreamSpecOptions {
  /** Video frames decoded from one latent frame (the decoder's; 1 for space-to-depth). */
  videoFramesPerLatentFrame: number;
  /** Video frames of the first block, when a streaming decoder's causal start gives fewer (the generator's framesOfBlock(0)). */
  firstBlockVideoFrames?: number;
  /** The stream ends after this many video frames (a render); absent: until it is removed. */
  durationFrames?: number;
  priority?: number;
}

/** Step counts from the generator's full count down through the configured ladder's smaller ones. */
export function stepLadderFor(config: Config): number[] {
  const full = config.generation.steps.length;
  return [full, ...config.scheduler.stepLadder.filter((s) => s < full)].filter((s, i, all) => all.indexOf(s) === i).sort((a, b) => b - a);
}

export function scheduledStreamSpec(config: Config, id: string, options: StreamSpecOptions): StreamSpec {
  return {
    ...streamSpecFromConfig(config, id, options),
    stepLadder: stepLadderFor(config),
    blockFrames: [config.generation.blockFrames],
  };
}
