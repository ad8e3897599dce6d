#include "denoise-steps.h"

#include <algorithm>
#include <vector>

// The arithmetic below must round as JavaScript's does (double operations, then float32 stores). The host path is
// compiled in ISO C++ mode (no contraction across or within these expressions); the kernel spells every operation
// with a round-to-nearest intrinsic, which the compiler never fuses into an FMA.

namespace ssn {
namespace {

enum class Step { Renoise, Euler, Last };

/** One sampler step over the latent on the device: the head's output `flow` (x0 for a sample-predicting head) turned
    into the next x (re-noise or Euler), or, on the last step, into x0. */
__global__ void samplerStepKernel(float* __restrict__ x, const float* __restrict__ flow, const float* __restrict__ noise,
                                  float* __restrict__ x0Out, int64_t n, double sigma, double next, double sampleDivisor,
                                  bool samplePrediction, Step step) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const double xi = x[i];
    float v = flow[i];
    if (samplePrediction) v = __double2float_rn(__ddiv_rn(__dsub_rn(xi, (double)v), sampleDivisor));  // flowOfSampleInPlace
    const double denoised = __dsub_rn(xi, __dmul_rn(sigma, (double)v));
    if (step == Step::Last) {
      x0Out[i] = __double2float_rn(denoised);  // denoisedInto
    } else if (step == Step::Renoise) {        // renoiseInPlace: x0 rounded to float32 first
      const double x0 = __double2float_rn(denoised);
      x[i] = __double2float_rn(__dadd_rn(__dmul_rn(__dsub_rn(1.0, next), x0), __dmul_rn(next, (double)noise[i])));
    } else {  // eulerInPlace
      x[i] = __double2float_rn(__dadd_rn(xi, __dmul_rn(__dsub_rn(next, sigma), (double)v)));
    }
  }
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw NativeError(std::string("denoiseSteps: ") + what + ": " + cudaGetErrorString(e));
}

/** The device path: x, the flow, the noises and x0 on the engine's GPU for the whole block; one upload, one download. */
void runOnDevice(Engine& e, const float* xHost, size_t n, int frames, const int32_t* framePositions, const DenoiseSteps& d,
                 float* x0Out) {
  DenoiseScratch& s = e.denoiseScratch;
  check(cudaSetDevice(e.device()), "cudaSetDevice");
  if (!s.stream) check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  const size_t bytes = n * sizeof(float);
  s.x.reserve(bytes);
  s.flow.reserve(bytes);
  s.x0.reserve(bytes);
  if (d.noises) s.noises.reserve(bytes * (d.steps - 1));
  check(cudaMemcpyAsync(s.x.ptr, xHost, bytes, cudaMemcpyHostToDevice, s.stream), "upload");
  if (d.noises) check(cudaMemcpyAsync(s.noises.ptr, d.noises, bytes * (d.steps - 1), cudaMemcpyHostToDevice, s.stream), "upload");
  check(cudaStreamSynchronize(s.stream), "upload");
  float* x = s.x.as<float>();
  float* flow = s.flow.as<float>();
  std::vector<float> ts(frames);
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<size_t>((n + threads - 1) / threads, 4096));
  for (int k = 0; k < d.steps; k++) {
    const double sigma = d.sigmas[k];
    std::fill(ts.begin(), ts.end(), static_cast<float>(sigma * 1000));
    e.forward(x, frames, ts.data(), framePositions, false, 0, flow);  // returns with its stream synchronised
    const bool last = k == d.steps - 1;
    const Step step = last ? Step::Last : d.noises ? Step::Renoise : Step::Euler;
    const float* noise = d.noises && !last ? s.noises.as<float>() + static_cast<size_t>(k) * n : nullptr;
    samplerStepKernel<<<blocks, threads, 0, s.stream>>>(x, flow, noise, s.x0.as<float>(), static_cast<int64_t>(n), sigma,
                                                        last ? 0.0 : d.sigmas[k + 1], std::max(sigma, d.sigmaFloor),
                                                        d.samplePrediction, step);
    check(cudaGetLastError(), "sampler step");
    check(cudaStreamSynchronize(s.stream), "sampler step");
  }
  check(cudaMemcpy(x0Out, s.x0.ptr, bytes, cudaMemcpyDeviceToHost), "download");
}

/** The host path: each forward's flow comes back to the host, the sampler's step runs here. */
void runOnHost(Engine& e, float* x, size_t n, int frames, const int32_t* framePositions, const DenoiseSteps& d, float* flow,
               float* x0Out) {
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

}  // namespace

void runDenoiseSteps(Engine& e, float* x, int64_t latentSize, int frames, const int32_t* framePositions,
                     const DenoiseSteps& d, float* flow, float* x0Out) {
  if (d.steps <= 0 || frames <= 0 || latentSize <= 0) throw NativeError("denoiseSteps: steps, frames and the latent size must be positive");
  const size_t n = static_cast<size_t>(latentSize);
  if (e.takesDevicePointers()) runOnDevice(e, x, n, frames, framePositions, d, x0Out);
  else runOnHost(e, x, n, frames, framePositions, d, flow, x0Out);
}

}  // namespace ssn
