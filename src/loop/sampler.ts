/**
 * The samplers' arithmetic over a block's latent (docs/model.md, The loop), in float32 as the latents are stored: one
 * pass each, in place, so nothing is allocated between two forwards. Small functions of their own so that the engine
 * of Node optimises their loops apart from the generator's asynchronous code.
 */

/**
 * The least noise level a sample-predicting model's flow divides by. The flow of x0 is (x - x0) / sigma, which
 * blows up as sigma -> 0; the training tools (tools/reference/model.py) divide by max(sigma, 0.05), so the runtime
 * must use the same floor to follow the flow the model was trained for.
 */
export const SAMPLE_SIGMA_FLOOR = 0.05;

/** A sample-predicting head's output x0 (in `out`) becomes the flow v = (x - x0) / max(sigma, floor), in place. */
export function flowOfSampleInPlace(out: Float32Array, x: Float32Array, sigma: number): Float32Array {
  const n = out.length;
  const s = Math.max(sigma, SAMPLE_SIGMA_FLOOR);
  for (let i = 0; i < n; i++) out[i] = (x[i] - out[i]) / s;
  return out;
}

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

/**
 * A block started from its previous frame (generation.blockStart previous-frame), in place: the block's noise
 * [C, F, H, W] becomes (1 - s0) * frame + s0 * noise, `frame` [C, H, W] (planes of `plane` = H * W values) repeated over
 * the block's F frames.
 */
export function startFromFrame(noise: Float32Array, frame: Float32Array, frames: number, plane: number, s0: number): void {
  if (noise.length !== frame.length * frames || frame.length % plane !== 0) {
    throw new RangeError(`a block of ${noise.length} values is not ${frames} frames of ${frame.length} in planes of ${plane}`);
  }
  const channels = frame.length / plane;
  const keep = 1 - s0;
  for (let c = 0; c < channels; c++) {
    const from = c * plane;
    for (let f = 0; f < frames; f++) {
      const at = (c * frames + f) * plane;
      for (let i = 0; i < plane; i++) noise[at + i] = keep * frame[from + i] + s0 * noise[at + i];
    }
  }
}
