/** Flow-matching timesteps (MODEL.md): s = t/1000 warped by the shift, s' = shift*s / (1 + (shift-1)*s). */

export function warpSigma(sigma: number, shift: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/** The warped timesteps on Wan's 0..1000 scale, e.g. [1000, 750, 500, 250] -> [1000, 937.5, 833.3, 625]. */
export function warpTimesteps(steps: readonly number[], shift: number): number[] {
  return steps.map((t) => 1000 * warpSigma(t / 1000, shift));
}
