/** Flow-matching timesteps (docs/model.md): s = t/1000 warped by the shift, s' = shift*s / (1 + (shift-1)*s). */

export function warpSigma(sigma: number, shift: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/** The warped timesteps on Wan's 0..1000 scale, e.g. [1000, 750, 500, 250] -> [1000, 937.5, 833.3, 625]. */
export function warpTimesteps(steps: readonly number[], shift: number): number[] {
  return steps.map((t) => 1000 * warpSigma(t / 1000, shift));
}

/** The sampler's noise levels: the warped timesteps on the 0..1 scale (the loop's sigmas). */
export function warpedSigmas(steps: readonly number[], shift: number): number[] {
  return warpTimesteps(steps, shift).map((t) => t / 1000);
}

/**
 * The timesteps of a block degraded to `count` steps (the scheduler's quality ladder): the configured
 * list when it has that many, else `count` evenly spaced steps from the list's first (Self-Forcing's
 * [1000, 750, 500, 250] is the 4-step case of this rule from 1000; a list that starts lower, for a block
 * started from its previous frame, keeps its start).
 */
export function stepsForCount(configured: readonly number[], count: number): number[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`step count ${count}: expected an integer >= 1`);
  if (count === configured.length) return [...configured];
  const first = configured[0];
  return Array.from({ length: count }, (_, i) => first * (1 - i / count));
}

/** `count` timesteps evenly spaced from 1000: [1000, 750, 500, 250] for 4. */
export function stepsFromNoise(count: number): number[] {
  return stepsForCount([1000], count);
}
