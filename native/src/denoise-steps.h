// A block's denoising steps run from C: the engine's forwards back to back with the sampler's step between them, so
// no JavaScript turn (the event loop's hop, the generator's pass over the latent) separates two forwards. On an
// engine that takes device pointers (one GPU) the latent stays on the GPU for the whole block and the sampler's step
// is a kernel; otherwise (a pipeline over several GPUs) the step runs on the host between the forwards.
#pragma once
#include "engine.h"

namespace ssn {

/** The steps of one block, as the generator would run them one forward at a time (src/loop/generator.ts, denoise). */
struct DenoiseSteps {
  const double* sigmas;  // [steps], each in (0, 1]
  int steps;
  const float* noises;   // re-noise sampler: [steps - 1][latent size], step k + 1's fresh noise; nullptr: Euler
  bool samplePrediction; // the head predicts x0: its output becomes the flow (x - x0) / max(sigma, sigmaFloor)
  double sigmaFloor;
};

/**
 * Runs the steps on `x` ([C, frames, H, W], the block's first noise; overwritten on the host path, read only on the
 * device path) and writes the last step's x0 into x0Out. The sampler's arithmetic is src/loop/sampler.ts's, operation
 * for operation: each value computed in double from float32 operands and rounded to float32 where the generator
 * stores it, so the result is the same bits as the generator's loop over the same forwards, on either path.
 * flow: host scratch of the latent's size (the host path's).
 */
void runDenoiseSteps(Engine& e, float* x, int64_t latentSize, int frames, const int32_t* framePositions,
                     const DenoiseSteps& d, float* flow, float* x0Out);

}  // namespace ssn
