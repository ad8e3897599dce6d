/**
 * A real stream as the scheduler sees it: the scheduler's objectives from the config, and the rungs
 * this stream's generator can actually run. A generator's block size is fixed by its config, so the
 * stream gets that one block size; its ladder starts at the generator's full step list (the quality
 * it was configured for) and goes down through the configured ladder's smaller step counts.
 */
import type { Config } from '../config/schema.js';
import { modelDims } from '../model/dims.js';
import { openingScaleOf } from '../loop/guidance-scale.js';
import { openingStepScaleOf } from '../loop/opening-steps.js';
import { objectiveFps, type StreamSpec } from '../../scheduler/index.js';

export interface StreamSpecOptions {
  /** Video frames decoded from one latent frame (the decoder's; 1 for space-to-depth). */
  videoFramesPerLatentFrame: number;
  /** Video frames of the first block, when a streaming decoder's causal start gives fewer (the generator's framesOfBlock(0)). */
  firstBlockVideoFrames?: number;
  /** The stream ends after this many video frames (a render); absent: until it is removed. */
  durationFrames?: number;
  priority?: number;
}

/**
 * A stream's spec from the validated configuration: the model's tokens per latent frame, the cache
 * window, the decoder's video frames per latent frame, and the scheduler's objectives.
 * `videoFramesPerLatentFrame`: 1 for the demo model's space-to-depth decoder, 4 for the Wan VAE.
 */
export function streamSpecFromConfig(
  config: Config,
  id: string,
  options: { priority?: number; videoFramesPerLatentFrame?: number; firstBlockVideoFrames?: number; durationFrames?: number } = {},
): StreamSpec {
  const dims = modelDims(config);
  const steady = forwardsPerStep(config);
  const opening = openingForwardsPerStep(config);
  const openingSteps = openingStepScaleOf(config);
  return {
    id,
    model: config.model.weights,
    tokensPerFrame: dims.tokensPerFrame,
    windowFrames: config.cache.window,
    videoFramesPerLatentFrame: options.videoFramesPerLatentFrame ?? 1,
    objectives: {
      targetFps: objectiveFps(config),
      latencyMs: config.scheduler.latencyMs,
      ttffMs: config.scheduler.ttffMs,
      priority: options.priority ?? 0,
    },
    ...(options.firstBlockVideoFrames !== undefined ? { firstBlockVideoFrames: options.firstBlockVideoFrames } : {}),
    ...(options.durationFrames !== undefined ? { durationFrames: options.durationFrames } : {}),
    ...(steady !== 1 ? { forwardsPerStep: steady } : {}),
    ...(opening !== steady ? { openingForwardsPerStep: opening } : {}),
    ...(openingSteps !== 1 ? { openingStepScale: openingSteps } : {}),
  };
}

/** Forwards of one denoising step: with classifier-free guidance (generation.guidance != 1), the prompt's and the unconditional one. */
export function forwardsPerStep(config: Pick<Config, 'generation'>): number {
  return forwardsAtScale(config.generation.guidance);
}

/**
 * Forwards of one denoising step of the first block: a block opened from noise follows generation.openingGuidance
 * (null: guidance); a drawn opening (generation.opening: scene) is not denoised, so it follows the others.
 */
export function openingForwardsPerStep(config: Pick<Config, 'generation'>): number {
  return config.generation.opening === 'noise' ? forwardsAtScale(openingScaleOf(config)) : forwardsPerStep(config);
}

/** A step guided at `scale` (anything but 1) runs the prompt's forward and the unconditional one. */
function forwardsAtScale(scale: number): number {
  return scale !== 1 ? 2 : 1;
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
