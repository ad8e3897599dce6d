/**
 * The samplers' arithmetic over a block's latent (docs/model.md, The loop), in float32 as the latents are stored: one
 * pass each, in place, so nothing is allocated between two forwards. Small functions of their own so that the engine
 * of Node optimises their loops apart from the generator's asynchronous code.
 */

/** x0 = x - sigma * v (the denoised latent of a step), into `out`. */
export function denoisedInto(out: Float32Array, x: Float32Array, v: Float32Array, sigma: number): Float32Array {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = x[i] - sigma * v[i];
  return out;
}

/**
 * Re-noise (Self-Forcing): x <- (1 - next) * x0 + next * noise with x0 = x - sigma * v rounded to float32 first, as
 * when it was stored in an array of its own.
 */
export function renoiseInPlace(x: Float32Array, v: Float32Array, noise: Float32Array, sigma: number, next: number): void {
  const n = x.length;
  const keep = 1 - next;
  for (let i = 0; i < n; i++) x[i] = keep * Math.fround(x[i] - sigma * v[i]) + next * noise[i];
}

/** Euler step along the flow (the ode sampler): x <- x + (next - sigma) * v. */
export function eulerInPlace(x: Float32Array, v: Float32Array, sigma: number, next: number): void {
  const n = x.length;
  const dt = next - sigma;
  for (let i = 0; i < n; i++) x[i] = x[i] + dt * v[i];
}

/**
 * Classifier-free guidance: uncond <- uncond + g * (cond - uncond), the guided flow in the unconditional forward's
 * array (float32, as the sampler reads it). Returns that array.
 */
export function guidedFlowInPlace(uncond: Float32Array, cond: Float32Array, g: number): Float32Array {
  const n = uncond.length;
  for (let i = 0; i < n; i++) uncond[i] = uncond[i] + g * (cond[i] - uncond[i]);
  return uncond;
}
