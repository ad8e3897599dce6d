// The stream's engine work for whole blocks run from C, with no JavaScript between the calls: the measure the
// Node path's engine time is compared with (bench --json's nodeVsC). One block: `steps` denoising forwards (the
// renoise sampler's arithmetic on the host), the clean pass keeping the block's K/V, then a sink-window update
// (the first sinkRows rows and the newest rows of [cache ‖ block], as many as the cache held).
#pragma once
#include "engine.h"

namespace ssn {

/** Runs `blocks` blocks on the engine's cache as it is (pending rows are taken in first, untimed). noise: [C, frames,
    H, W] host values (the first noise and every re-noise); sigmas: [steps] in (0, 1]. The cache keeps its row count
    (at least sinkRows); the rows' positions become the block's (frame, row, column) by row order: a measurement, reset
    the cache after. out[3 * b + 0..2]: block b's wall ms, its forwards' ms, its update's ms. */
void runBlockLoop(Engine& e, const float* noise, int64_t latentSize, int frames, const float* sigmas, int steps,
                  const int32_t* framePositions, int tokensPerFrame, int gridWidth, int blocks, int sinkRows, double* out);

}  // namespace ssn
