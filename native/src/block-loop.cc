#include "block-loop.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace ssn {

namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

/** The sink window's update: rows [0, sink) and the newest (keep - sink) rows of the `total` live rows. */
void sinkUpdate(Engine& e, int keep, int sink, int tokensPerFrame, int gridWidth) {
  const int total = e.cacheRows() + e.pendingRows();
  const int rows = std::min(keep, total);
  const int head = std::min(sink, rows);
  std::vector<int32_t> sources(rows);
  std::vector<float> weights(rows, 1.f), positions((size_t)rows * 3);
  for (int i = 0; i < rows; i++) {
    sources[i] = i < head ? i : total - (rows - i);
    const int t = i % tokensPerFrame;
    positions[(size_t)i * 3 + 0] = static_cast<float>(i / tokensPerFrame);
    positions[(size_t)i * 3 + 1] = static_cast<float>(t / gridWidth);
    positions[(size_t)i * 3 + 2] = static_cast<float>(t % gridWidth);
  }
  e.updateCache(rows, 1, false, sources.data(), weights.data(), positions.data());
}

}  // namespace

void runBlockLoop(Engine& e, const float* noise, int64_t latentSize, int frames, const float* sigmas, int steps,
                  const int32_t* framePositions, int tokensPerFrame, int gridWidth, int blocks, int sinkRows, double* out) {
  if (steps <= 0 || blocks <= 0 || frames <= 0) throw NativeError("block loop: steps, blocks and frames must be positive");
  if (tokensPerFrame <= 0 || gridWidth <= 0) throw NativeError("block loop: tokensPerFrame and gridWidth must be positive");
  const int keep = std::max(e.cacheRows(), sinkRows);
  if (e.pendingRows() > 0) sinkUpdate(e, keep, sinkRows, tokensPerFrame, gridWidth);
  const size_t n = static_cast<size_t>(latentSize);
  std::vector<float> ts(frames), x(n), x0(n), flow(n);
  for (int b = 0; b < blocks; b++) {
    const auto t0 = Clock::now();
    double forwardsMs = 0;
    std::copy(noise, noise + n, x.begin());
    for (int k = 0; k < steps; k++) {
      std::fill(ts.begin(), ts.end(), sigmas[k] * 1000.f);
      const auto f0 = Clock::now();
      e.forward(x.data(), frames, ts.data(), framePositions, false, 0, flow.data());
      forwardsMs += msSince(f0);
      const float s = sigmas[k];
      for (size_t i = 0; i < n; i++) x0[i] = x[i] - s * flow[i];
      if (k + 1 < steps) {
        const float next = sigmas[k + 1];
        for (size_t i = 0; i < n; i++) x[i] = (1 - next) * x0[i] + next * noise[i];
      }
    }
    std::fill(ts.begin(), ts.end(), 0.f);
    const auto c0 = Clock::now();
    e.forward(x0.data(), frames, ts.data(), framePositions, true, 0, flow.data());
    forwardsMs += msSince(c0);
    const auto u0 = Clock::now();
    sinkUpdate(e, keep, sinkRows, tokensPerFrame, gridWidth);
    out[3 * b + 0] = msSince(t0);
    out[3 * b + 1] = forwardsMs;
    out[3 * b + 2] = msSince(u0);
  }
}

}  // namespace ssn
