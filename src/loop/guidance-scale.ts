import type { Config } from '../config/schema.js';

/** The opening block's guidance scale: generation.openingGuidance, or generation.guidance when that is null. */
export function openingScaleOf(config: Pick<Config, 'generation'>): number {
  return config.generation.openingGuidance ?? config.generation.guidance;
}
