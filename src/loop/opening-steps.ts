import type { Config } from '../config/schema.js';

/**
 * The first block's timesteps when they differ from generation.steps: generation.openingSteps for a block opened from
 * noise; null when that key is null or the opening is drawn (generation.opening: scene, which is not denoised).
 */
export function openingStepsOf(config: Pick<Config, 'generation'>): readonly number[] | null {
  return config.generation.opening === 'noise' ? config.generation.openingSteps : null;
}

/** The first block's denoising steps per step of the others (8 opening steps for 4 configured: 2); 1 when they agree. */
export function openingStepScaleOf(config: Pick<Config, 'generation'>): number {
  const opening = openingStepsOf(config);
  return opening ? opening.length / config.generation.steps.length : 1;
}
