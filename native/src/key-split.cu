#include "key-split.h"
#include "kernels.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace ssn {
namespace {

constexpr int kThreads = 256;
constexpr int kVec = 8;          // output elements a thread writes (16 bytes of bf16)
constexpr int kMaxSplits = 8;
constexpr int kQueryTile = 128;  // the query rows one attention tile holds (FlashAttention-3's size; cuDNN's is not published)

template <typename In>
__global__ void mergeKernel(const In* parts, const float* lse, int n, int lq, int heads, int headDim, const float* descale,
                            bf16* o, int oStride) {
  const int d = heads * headDim, perRow = d / kVec;
  const size_t total = (size_t)lq * perRow;
  const float scale = descale ? *descale : 1.f;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    const int r = static_cast<int>(i / perRow), c = static_cast<int>(i % perRow) * kVec, h = c / headDim;
    float l[kMaxSplits], m = -INFINITY;
    for (int s = 0; s < n; s++) {
      l[s] = lse[((size_t)s * heads + h) * lq + r];
      m = fmaxf(m, l[s]);
    }
    float acc[kVec] = {}, wsum = 0.f;
    for (int s = 0; s < n; s++) {
      const float w = __expf(l[s] - m);
      wsum += w;
      float x[kVec];
      load8(parts + ((size_t)s * lq + r) * d + c, x);
#pragma unroll
      for (int j = 0; j < kVec; j++) acc[j] += w * x[j];
    }
    const float k = scale / wsum;
    __nv_bfloat162 out[kVec / 2];
#pragma unroll
    for (int j = 0; j < kVec / 2; j++) out[j] = __floats2bfloat162_rn(acc[2 * j] * k, acc[2 * j + 1] * k);
    *reinterpret_cast<uint4*>(o + (size_t)r * oStride + c) = *reinterpret_cast<const uint4*>(out);
  }
}

template <typename In>
void launchMerge(const In* parts, const float* lse, int n, int lq, int heads, int headDim, const float* descale, bf16* o,
                 int oStride, cudaStream_t s) {
  if (n < 1 || n > kMaxSplits) throw NativeError("key splits: " + std::to_string(n) + " runs (1 to 8 merge)");
  const size_t vectors = (size_t)lq * heads * headDim / kVec;
  const int grid = static_cast<int>(std::min<size_t>((vectors + kThreads - 1) / kThreads, 132 * 8));
  mergeKernel<In><<<grid, kThreads, 0, s>>>(parts, lse, n, lq, heads, headDim, descale, o, oStride);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

int forcedKeySplits() {
  const char* env = std::getenv("SSN_ATTENTION_SPLIT");
  if (!env || !*env || !std::strcmp(env, "auto")) return 0;
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (*end || n < 1 || n > 8) throw NativeError(std::string("SSN_ATTENTION_SPLIT must be auto or 1 to 8, got '") + env + "'");
  return static_cast<int>(n);
}

int keySplits(int lq, int lk, int heads, int headDim, int sms, int forced) {
  if (headDim % kVec) return 1;
  if (forced > 0) return forced <= kMaxSplits && lk % forced == 0 ? forced : 1;
  const long tiles = (long)((lq + kQueryTile - 1) / kQueryTile) * heads;
  if (sms <= 0 || tiles >= 4L * sms) return 1;
  return lk % 2 == 0 && lk / 2 >= 2048 ? 2 : 1;
}

void mergeKeySplits(const bf16* parts, const float* lse, int n, int lq, int heads, int headDim, bf16* o, int oStride,
                    cudaStream_t s) {
  launchMerge(parts, lse, n, lq, heads, headDim, nullptr, o, oStride, s);
}

void mergeKeySplitsFp8(const uint8_t* parts, const float* lse, int n, int lq, int heads, int headDim,
                       const float* descale, bf16* o, int oStride, cudaStream_t s) {
  launchMerge(parts, lse, n, lq, heads, headDim, descale, o, oStride, s);
}

}  // namespace ssn
