#include "denoise-steps.h"

#include <algorithm>
#include <vector>

// The arithmetic below must round as JavaScript's does (double operations, then float32 stores): built without FMA
// contraction (ISO C++ mode: g++ -std=c++17 does not contract across statements or within these expressions).

namespace ssn {

void runDenoiseSteps(Engine& e, float* x, int64_t latentSize, int frames, const int32_t* framePositions,
                     const DenoiseSteps& d, float* flow, float* x0Out) {
  if (d.steps <= 0 || frames <= 0 || latentSize <= 0) throw NativeError("denoiseSteps: steps, frames and the latent size must be positive");
  const size_t n = static_cast<size_t>(latentSize);
  std::vector<float> ts(frames);
  for (int k = 0; k < d.steps; k++) {
    const double sigma = d.sigmas[k];
    std::fill(ts.begin(), ts.end(), static_cast<float>(sigma * 1000));
    e.forward(x, frames, ts.data(), framePositions, false, 0, flow);
    if (d.samplePrediction) {  // flowOfSampleInPlace
      const double s = std::max(sigma, d.sigmaFloor);
      for (size_t i = 0; i < n; i++) flow[i] = static_cast<float>((static_cast<double>(x[i]) - flow[i]) / s);
    }
    if (k == d.steps - 1) {  // denoisedInto
      for (size_t i = 0; i < n; i++) x0Out[i] = static_cast<float>(x[i] - sigma * flow[i]);
    } else if (d.noises) {  // renoiseInPlace
      const double next = d.sigmas[k + 1], keep = 1 - next;
      const float* noise = d.noises + static_cast<size_t>(k) * n;
      for (size_t i = 0; i < n; i++) {
        const float x0 = static_cast<float>(x[i] - sigma * flow[i]);
        x[i] = static_cast<float>(keep * x0 + next * noise[i]);
      }
    } else {  // eulerInPlace
      const double dt = d.sigmas[k + 1] - sigma;
      for (size_t i = 0; i < n; i++) x[i] = static_cast<float>(x[i] + dt * flow[i]);
    }
  }
}

}  // namespace ssn
