// The Wan2.1 VAE decoder on the GPU (see wan-vae-decoder.h). Tensors are NHWC with the frames as N: [n, h, w, C].
//
// A causal convolution with a temporal kernel of 3 over [cache (2 frames) ‖ x (n frames)] is one 2D convolution
// whose input stacks three consecutive frames along the channels: S[t, p, k C + c] = window[t + k, p, c], weights
// [cout, kh, kw, 3 C] with [o, ., ., k C + c] = W[o, c, k, ., .] (as src/onnx/wan-vae-graph.ts does). Every causal
// convolution but conv1 and the Resample's time_conv follows an RMS_norm + SiLU; one kernel (stackKernel) computes
// those and writes each result straight into its three places of S, so stacking costs no pass of its own. The new
// cache (window frames n and n + 1) is then copied out of S's last frame.
//
// Per block of n latent frames (a stream's first latent frame alone first, without the time doubling: vae.py's
// 'Rep' case, the time_conv caches staying zeros):
//   latent fp32 [z, F, h, w] --conv2 with z * std + mean folded in (fp32)--> conv1 (causal) + bias
//   middle: ResidualBlock, AttentionBlock, ResidualBlock
//   4 levels: 3 x ResidualBlock, then (levels 0-2) Resample: time_conv (levels 0, 1: channel halves to two frames,
//             fused with the nearest x2 upsampling) and a 3x3 conv to half the width
//   head: RMS_norm, SiLU, causal conv to 3 channels (padded to 8) + bias -> clamp -> RGB24
// ResidualBlock: skip = x or the 1x1 shortcut (+ bias); y = conv_a(stack(SiLU(norm(x)))); out = conv_b(stack(SiLU(
// norm(y + bias_a)))) + bias_b + skip (bias_a applied in the norm's read, bias_b and skip in one epilogue pass).
// AttentionBlock, per frame, with its products as cuDNN 1x1 convolutions (tensor cores without another GEMM
// library): q = norm(x) Wq / sqrt(C) + bq / sqrt(C), k = norm(x) Wk (k's bias adds a constant to each row of the
// scores: softmax ignores it), v^T = Wv norm(x)^T (v's bias passes the softmax unchanged: it is folded into proj's
// bias), scores = q k^T, P = softmax in fp32, o = P v, out = o Wp + (bp + Wp bv) + x.
#include "wan-vae-decoder.h"
#include "cudnn-conv.h"
#include "decode-timer.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <map>
#include <type_traits>
#include <vector>

namespace ssn {
namespace {

constexpr int kOutPad = 8;  // the head's 3 output channels, padded (zero weights) for tensor cores
constexpr int kThreads = 256;
constexpr int kCacheFrames = 2;

__device__ __forceinline__ float toF(float v) { return v; }
__device__ __forceinline__ float toF(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toF(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T fromF(float v);
template <> __device__ __forceinline__ float fromF<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 fromF<bf16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ __half fromF<__half>(float v) { return __float2half(v); }

__device__ __forceinline__ float2 load2(const float* p) { return *reinterpret_cast<const float2*>(p); }
__device__ __forceinline__ float2 load2(const bf16* p) { return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p)); }
__device__ __forceinline__ float2 load2(const __half* p) { return __half22float2(*reinterpret_cast<const __half2*>(p)); }
__device__ __forceinline__ void store2(float* p, float2 v) { *reinterpret_cast<float2*>(p) = v; }
__device__ __forceinline__ void store2(bf16* p, float2 v) { *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v.x, v.y); }
__device__ __forceinline__ void store2(__half* p, float2 v) { *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v.x, v.y); }

int gridFor(long long n) { return static_cast<int>(std::min<long long>((n + kThreads - 1) / kThreads, 1 << 20)); }
#define GRID_STRIDE(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/** latent [z, F, plane] fp32, frames [f0, f0 + n) -> x [n, plane, z]: x = W2 latent + b2 (fp32, statistics folded in). */
template <typename T>
__global__ void conv2Kernel(const float* __restrict__ latent, int F, int f0, int n, long long plane, int z,
                            const float* __restrict__ w, const float* __restrict__ b, T* __restrict__ x) {
  GRID_STRIDE(i, (long long)n * plane * z) {
    const int o = static_cast<int>(i % z);
    const long long q = i / z;
    const long long t = q / plane, p = q % plane;
    float acc = b[o];
    for (int c = 0; c < z; c++) acc += w[o * z + c] * latent[((long long)c * F + f0 + t) * plane + p];
    x[i] = fromF<T>(acc);
  }
}

/**
 * One warp per (window frame j, pixel p) of window = [cache (2 frames) ‖ x (n frames)], C even:
 * v = cache[j] as is, or for j >= 2: x[j - 2] (+ inBias), then (gamma) RMS_norm in fp32 with gamma already times
 * sqrt(C), then (silu) SiLU; written to S[j - k, p, k C + c] for k = 0..2 where 0 <= j - k < n.
 */
template <typename T>
__global__ void stackKernel(const T* __restrict__ x, const T* __restrict__ cache, T* __restrict__ S,
                            const float* __restrict__ inBias, const float* __restrict__ gamma, bool silu, int n,
                            long long plane, int C) {
  const int lane = threadIdx.x & 31;
  const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
  for (long long wi = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5; wi < (long long)(n + kCacheFrames) * plane;
       wi += warps) {
    const int j = static_cast<int>(wi / plane);
    const long long p = wi % plane;
    const bool fromCache = j < kCacheFrames;
    const T* src = fromCache ? cache + ((long long)j * plane + p) * C : x + ((long long)(j - kCacheFrames) * plane + p) * C;
    float inv = 1.f;
    if (!fromCache && gamma) {
      float ss = 0.f;
      for (int c = 2 * lane; c < C; c += 64) {
        float2 v = load2(src + c);
        if (inBias) v.x += inBias[c], v.y += inBias[c + 1];
        ss += v.x * v.x + v.y * v.y;
      }
      ss = warpSum(ss);
      inv = 1.f / fmaxf(sqrtf(ss), 1e-12f);
    }
    for (int c = 2 * lane; c < C; c += 64) {
      float2 v = load2(src + c);
      if (!fromCache) {
        if (inBias) v.x += inBias[c], v.y += inBias[c + 1];
        if (gamma) v.x *= inv * gamma[c], v.y *= inv * gamma[c + 1];
        if (silu) v.x = v.x / (1.f + __expf(-v.x)), v.y = v.y / (1.f + __expf(-v.y));
      }
#pragma unroll
      for (int k = 0; k < 3; k++) {
        const int t = j - k;
        if (t >= 0 && t < n) store2(S + ((long long)t * plane + p) * (3 * C) + k * C + c, v);
      }
    }
  }
}

/** The new cache: window frames n and n + 1 = S[n - 1, p, C..3C). */
template <typename T>
__global__ void cacheOutKernel(const T* __restrict__ S, T* __restrict__ cache, int n, long long plane, int C) {
  GRID_STRIDE(i, (long long)kCacheFrames * plane * C) {
    const int c = static_cast<int>(i % C);
    const long long q = i / C;
    const int f = static_cast<int>(q / plane);
    const long long p = q % plane;
    cache[i] = S[((long long)(n - 1) * plane + p) * (3 * C) + (f + 1) * C + c];
  }
}

/** RMS_norm without SiLU or stacking (the attention's): one warp per pixel. */
template <typename T>
__global__ void normKernel(const T* __restrict__ x, T* __restrict__ y, const float* __restrict__ gamma, long long rows, int C) {
  const int lane = threadIdx.x & 31;
  const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
  for (long long r = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5; r < rows; r += warps) {
    const T* src = x + r * C;
    float ss = 0.f;
    for (int c = 2 * lane; c < C; c += 64) {
      const float2 v = load2(src + c);
      ss += v.x * v.x + v.y * v.y;
    }
    const float inv = 1.f / fmaxf(sqrtf(warpSum(ss)), 1e-12f);
    for (int c = 2 * lane; c < C; c += 64) {
      float2 v = load2(src + c);
      v.x *= inv * gamma[c];
      v.y *= inv * gamma[c + 1];
      store2(y + r * C + c, v);
    }
  }
}

template <typename T>
struct alignas(sizeof(T) * 8) Pack8 {
  T v[8];
};

/** y = y + bias[c] (+ skip), rows of C channels (C a multiple of 8), 8 channels per thread. */
template <typename T>
__global__ void biasAddKernel(T* __restrict__ y, const float* __restrict__ bias, const T* __restrict__ skip, long long total, int C) {
  using P = Pack8<T>;
  const int C8 = C / 8;
  GRID_STRIDE(i, total / 8) {
    const int c = static_cast<int>(i % C8) * 8;
    P a = reinterpret_cast<const P*>(y)[i];
    P b;
    if (skip) b = reinterpret_cast<const P*>(skip)[i];
#pragma unroll
    for (int k = 0; k < 8; k++) {
      float v = toF(a.v[k]) + bias[c + k];
      if (skip) v += toF(b.v[k]);
      a.v[k] = fromF<T>(v);
    }
    reinterpret_cast<P*>(y)[i] = a;
  }
}

/** g [n, h, w, S C] (+ bias[S C]) -> u [n S, 2h, 2w, C]: u[t S + s, Y, X, c] = g[t, Y / 2, X / 2, s C + c] (C a multiple
    of 8): nearest x2 upsampling, and with S = 2 the time_conv's channel halves as two frames. */
template <typename T>
__global__ void upsampleKernel(const T* __restrict__ g, const float* __restrict__ bias, T* __restrict__ u, int n, int S, int h,
                               int w, int C) {
  using P = Pack8<T>;
  const int H = 2 * h, W = 2 * w, C8 = C / 8;
  GRID_STRIDE(i, (long long)n * S * H * W * C8) {
    const int c = static_cast<int>(i % C8) * 8;
    long long q = i / C8;
    const int X = static_cast<int>(q % W);
    q /= W;
    const int Y = static_cast<int>(q % H);
    q /= H;
    const int s = static_cast<int>(q % S);
    const long long t = q / S;
    const int gc = s * C + c;
    P v = *reinterpret_cast<const P*>(g + ((t * h + (Y >> 1)) * w + (X >> 1)) * ((long long)S * C) + gc);
    if (bias) {
#pragma unroll
      for (int k = 0; k < 8; k++) v.v[k] = fromF<T>(toF(v.v[k]) + bias[gc + k]);
    }
    reinterpret_cast<P*>(u)[i] = v;
  }
}

/** Softmax of each row of `cols` values (in place), fp32 arithmetic; one block per row. */
template <typename T>
__global__ void softmaxKernel(T* __restrict__ s, int cols) {
  T* row = s + (long long)blockIdx.x * cols;
  __shared__ float red[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  float m = -INFINITY;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, toF(row[c]));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = red[0];
  for (int i = 1; i < nw; i++) m = fmaxf(m, red[i]);
  __syncthreads();
  float sum = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += __expf(toF(row[c]) - m);
  sum = warpSum(sum);
  if (lane == 0) red[warp] = sum;
  __syncthreads();
  sum = 0.f;
  for (int i = 0; i < nw; i++) sum += red[i];
  const float inv = 1.f / sum;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) row[c] = fromF<T>(__expf(toF(row[c]) - m) * inv);
}

/** o [frames, plane, cp] (channels 0-2) + bias -> RGB24: floor((v + 1) * 127.5 + 0.5) clamped to [0, 255]. */
template <typename T>
__global__ void toRgbKernel(const T* __restrict__ o, int cp, const float* __restrict__ bias, uint8_t* __restrict__ out, long long pixels) {
  GRID_STRIDE(i, pixels) {
#pragma unroll
    for (int ch = 0; ch < 3; ch++) {
      const float v = floorf((toF(o[i * cp + ch]) + bias[ch] + 1.f) * 127.5f + 0.5f);
      out[i * 3 + ch] = static_cast<uint8_t>(fminf(fmaxf(v, 0.f), 255.f));
    }
  }
}

/** PyTorch [rows, I, kt, kh, kw] fp32 (rows from rowOffset) * scale -> [opad, kh, kw, kt I] with [o, y, x, k I + c]
    = W[o, c, k, y, x], zero rows past O. */
template <typename T>
__global__ void packKernel(const float* __restrict__ w, T* __restrict__ out, long long rowOffset, int O, int opad, int I, int kt,
                           int kh, int kw, float scale) {
  const int cin = kt * I;
  GRID_STRIDE(i, (long long)opad * kh * kw * cin) {
    const int ci = static_cast<int>(i % cin);
    long long q = i / cin;
    const int kx = static_cast<int>(q % kw);
    q /= kw;
    const int ky = static_cast<int>(q % kh);
    const long long o = q / kh;
    const int k = ci / I, c = ci % I;
    out[i] = fromF<T>(o < O ? w[((((o + rowOffset) * I + c) * kt + k) * kh + ky) * kw + kx] * scale : 0.f);
  }
}

__global__ void scaleKernel(const float* __restrict__ in, float* __restrict__ out, int n, float scale) {
  GRID_STRIDE(i, n) out[i] = in[i] * scale;
}

/** out[o] = b[o] + sum_i W[o, i] v[i] (W [C, C] fp32) */
__global__ void foldBiasKernel(const float* __restrict__ W, const float* __restrict__ v, const float* __restrict__ b,
                               float* __restrict__ out, int C) {
  GRID_STRIDE(o, C) {
    float acc = b[o];
    for (int i = 0; i < C; i++) acc += W[o * C + i] * v[i];
    out[o] = acc;
  }
}

template <typename T>
constexpr ConvType convType() {
  return std::is_same<T, float>::value ? ConvType::Fp32 : std::is_same<T, bf16>::value ? ConvType::Bf16 : ConvType::Fp16;
}

/** A convolution as cuDNN runs it: [coutPad, k, k, cin] weights in the storage type, fp32 bias [coutPad]. */
struct Conv {
  int cin = 0, cout = 0, coutPad = 0, k = 1;
  DeviceBuffer w, bias;
};

enum class Kind { Conv1, Residual, Attention, Resample, Head };

struct Stage {
  Kind kind;
  std::string key;
  int cin = 0, cout = 0;  // Residual; Conv1: z -> cout; Attention, Resample, Head: cin = the width
  int scale = 1;          // spatial size over the latent's
  bool temporal = false;  // Resample
  int cacheA = -1, cacheB = -1;
  Conv a, b, shortcut;    // Conv1: a; Residual: a, b, shortcut; Resample: a = time_conv, b = the 3x3; Head: a
  Conv q, k, proj;        // Attention
  DeviceBuffer gammaA, gammaB;  // fp32, times sqrt(C)
  DeviceBuffer wv;        // Attention: Wv [C, C] in the storage type (the input of the v^T product)
  bool hasShortcut = false;
};

template <typename T>
class Impl final : public WanVaeDecoder {
 public:
  Impl(const WanVaeDims& d, int device) : dims_(d), device_(device) {
    if (d.dim <= 0 || d.dim % 8 || d.zDim <= 0 || d.zDim % 2 || d.latentHeight <= 0 || d.latentWidth <= 0)
      throw NativeError("Wan VAE: dim (a multiple of 8), z_dim (even), latent height and width must be positive");
    CUDA_CHECK(cudaSetDevice(device));
    conv_ = CudnnConv::create(device, convType<T>());
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    timer_.create();
    buildStages();
    perRun_ = framesPerRun();
    reset();
  }

  ~Impl() override {
    cudaSetDevice(device_);
    if (stream_) cudaStreamSynchronize(stream_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  int device() const override { return device_; }
  int width() const override { return dims_.latentWidth * 8; }
  int height() const override { return dims_.latentHeight * 8; }

  void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) override {
    auto it = expected_.find(key);
    if (it == expected_.end()) {
      if (key.rfind("decoder.", 0) == 0 || key.rfind("conv2.", 0) == 0)
        throw NativeError("Wan VAE: '" + key + "' is not a weight of the decoder (base width " + std::to_string(dims_.dim) + ")");
      return;  // the encoder's half of the checkpoint
    }
    if (count != it->second.first)
      throw NativeError("Wan VAE weight " + key + ": " + std::to_string(count) + " values, expected shape " + it->second.second);
    DeviceBuffer& b = raw_[key];
    b.reserve(std::max<int64_t>(count, 1) * sizeof(float));
    CUDA_CHECK(cudaMemcpyAsync(b.ptr, data, count * sizeof(float), onDevice ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void finalize(int warmupFrames) override {
    if (!finalized_) {
      for (const auto& kv : expected_) {
        const bool optional = kv.first.rfind("latent.", 0) == 0;
        if (!optional && !raw_.count(kv.first)) throw NativeError("Wan VAE weight missing: " + kv.first + " " + kv.second.second);
      }
      if (raw_.count("latent.mean") != raw_.count("latent.std")) throw NativeError("Wan VAE: latent.mean and latent.std go together");
      layOut();
      raw_.clear();
      finalized_ = true;
    }
    if (warmupFrames > 0) {
      const long long plane0 = (long long)dims_.latentHeight * dims_.latentWidth;
      std::vector<float> zeros((size_t)dims_.zDim * warmupFrames * plane0, 0.f);
      std::vector<uint8_t> out((size_t)4 * warmupFrames * width() * height() * 3);
      reset();
      decode(zeros.data(), warmupFrames, out.data(), static_cast<int64_t>(out.size()));
      decode(zeros.data(), warmupFrames, out.data(), static_cast<int64_t>(out.size()));
      reset();
    }
  }

  int decode(const float* latent, int frames, uint8_t* out, int64_t capacity) override {
    if (!finalized_) throw NativeError("Wan VAE: decode before finalize");
    if (frames < 1) throw NativeError("Wan VAE: a block needs at least one latent frame");
    const int nOut = started_ ? 4 * frames : 1 + 4 * (frames - 1);
    const long long outPlane = (long long)width() * height();
    if (capacity < nOut * outPlane * 3)
      throw NativeError("Wan VAE: output holds " + std::to_string(capacity) + " bytes, " + std::to_string(nOut) +
                        " frames need " + std::to_string(nOut * outPlane * 3));
    ensureBuffers(std::min(frames, perRun_));
    const long long plane0 = (long long)dims_.latentHeight * dims_.latentWidth;
    latent_.reserve((size_t)dims_.zDim * frames * plane0 * sizeof(float));
    rgb_.reserve((size_t)nOut * outPlane * 3);
    timer_.started(stream_);
    CUDA_CHECK(cudaMemcpyAsync(latent_.ptr, latent, (size_t)dims_.zDim * frames * plane0 * sizeof(float), cudaMemcpyHostToDevice, stream_));
    timer_.uploaded(stream_);
    long long written = 0;
    int f0 = 0;
    if (!started_) {
      written += runChunk(frames, 0, 1, true, rgb_.as<uint8_t>());
      f0 = 1;
    }
    for (int f = f0; f < frames; f += perRun_)
      written += runChunk(frames, f, std::min(perRun_, frames - f), false, rgb_.as<uint8_t>() + written * outPlane * 3);
    if (written != nOut) throw NativeError("Wan VAE: internal: " + std::to_string(written) + " frames, expected " + std::to_string(nOut));
    timer_.finish(stream_, out, rgb_.ptr, (size_t)nOut * outPlane * 3);
    started_ = true;
    return nOut;
  }

  void reset() override {
    for (DeviceBuffer& b : caches_) CUDA_CHECK(cudaMemsetAsync(b.ptr, 0, b.bytes, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    started_ = false;
  }

  void stats(int* plans, double* planMs, double* lastMs) const override {
    if (plans) *plans = plans_;
    if (planMs) *planMs = planMs_;
    if (lastMs) *lastMs = timer_.lastMs();
  }

  void lastSplit(double* ms) const override { timer_.lastSplit(ms); }

  int64_t deviceBytes() const override {
    int64_t n = 0;
    for (const DeviceBuffer& b : caches_) n += b.bytes;
    for (const DeviceBuffer* b : {&act_[0], &act_[1], &act_[2], &act_[3], &S_, &latent_, &rgb_, &xn_, &q_, &k_, &o_, &vt_, &scores_, &w2_, &b2_})
      n += b->bytes;
    for (const Stage& s : stages_)
      for (const DeviceBuffer* b : {&s.a.w, &s.a.bias, &s.b.w, &s.b.bias, &s.shortcut.w, &s.shortcut.bias, &s.q.w, &s.q.bias, &s.k.w,
                                    &s.k.bias, &s.proj.w, &s.proj.bias, &s.gammaA, &s.gammaB, &s.wv})
        n += b->bytes;
    return n;
  }

  std::string describe() const override {
    const char* type = std::is_same<T, float>::value ? "fp32" : std::is_same<T, bf16>::value ? "bf16" : "fp16";
    return CudnnConv::describe() + ", " + type + " (fp32 accumulation, RMS_norm and softmax in fp32), " +
           std::to_string(caches_.size()) + " causal caches on the GPU, up to " + std::to_string(perRun_) +
           " latent frames per run";
  }

 private:
  int dimAt(int i) const {  // dims = dim * [4, 4, 4, 2, 1]
    static const int mult[5] = {4, 4, 4, 2, 1};
    return dims_.dim * mult[i];
  }

  void expect(const std::string& key, std::vector<int> shape) {
    int64_t n = 1;
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) {
      n *= shape[i];
      s += (i ? ", " : "") + std::to_string(shape[i]);
    }
    expected_[key] = {n, s + "]"};
  }

  int addCache(int channels, int scale) {
    const long long plane = (long long)(dims_.latentHeight * scale) * (dims_.latentWidth * scale);
    caches_.emplace_back();
    caches_.back().reserve((size_t)kCacheFrames * plane * channels * sizeof(T));
    return static_cast<int>(caches_.size()) - 1;
  }

  void buildStages() {
    const int z = dims_.zDim;
    expect("conv2.weight", {z, z, 1, 1, 1});
    expect("conv2.bias", {z});
    expect("latent.mean", {z});
    expect("latent.std", {z});
    auto conv3 = [&](const std::string& key, int out, int in, int kt, int k) {
      expect(key + ".weight", kt ? std::vector<int>{out, in, kt, k, k} : std::vector<int>{out, in, k, k});
      expect(key + ".bias", {out});
    };
    int scale = 1;
    auto add = [&](Kind kind, const std::string& key, int cin, int cout) -> Stage& {
      stages_.emplace_back();
      Stage& s = stages_.back();
      s.kind = kind;
      s.key = key;
      s.cin = cin;
      s.cout = cout;
      s.scale = scale;
      return s;
    };
    auto residual = [&](const std::string& key, int cin, int cout) {
      Stage& s = add(Kind::Residual, key, cin, cout);
      expect(key + ".residual.0.gamma", {cin, 1, 1, 1});
      conv3(key + ".residual.2", cout, cin, 3, 3);
      expect(key + ".residual.3.gamma", {cout, 1, 1, 1});
      conv3(key + ".residual.6", cout, cout, 3, 3);
      s.hasShortcut = cin != cout;
      if (s.hasShortcut) conv3(key + ".shortcut", cout, cin, 1, 1);
      s.cacheA = addCache(cin, scale);
      s.cacheB = addCache(cout, scale);
    };
    const int d0 = dimAt(0);
    {
      Stage& s = add(Kind::Conv1, "decoder.conv1", z, d0);
      conv3(s.key, d0, z, 3, 3);
      s.cacheA = addCache(z, scale);
    }
    residual("decoder.middle.0", d0, d0);
    {
      const std::string key = "decoder.middle.1";
      add(Kind::Attention, key, d0, d0);
      expect(key + ".norm.gamma", {d0, 1, 1});
      conv3(key + ".to_qkv", 3 * d0, d0, 0, 1);
      conv3(key + ".proj", d0, d0, 0, 1);
    }
    residual("decoder.middle.2", d0, d0);
    int index = 0, out = d0;
    for (int level = 0; level < 4; level++) {
      int in = level == 0 ? dimAt(0) : dimAt(level) / 2;
      out = dimAt(level + 1);
      for (int r = 0; r < 3; r++) {
        residual("decoder.upsamples." + std::to_string(index++), in, out);
        in = out;
      }
      if (level < 3) {
        const std::string key = "decoder.upsamples." + std::to_string(index++);
        Stage& s = add(Kind::Resample, key, out, out / 2);
        s.temporal = level < 2;  // vae.py: temperal_downsample [False, True, True], reversed
        conv3(key + ".resample.1", out / 2, out, 0, 3);
        if (s.temporal) {
          conv3(key + ".time_conv", 2 * out, out, 3, 1);
          s.cacheA = addCache(out, scale);
        }
        scale *= 2;
      }
    }
    Stage& h = add(Kind::Head, "decoder.head", out, 3);
    expect("decoder.head.0.gamma", {out, 1, 1, 1});
    conv3("decoder.head.2", 3, out, 3, 3);
    h.cacheA = addCache(out, scale);
  }

  const float* raw(const std::string& key) const {
    auto it = raw_.find(key);
    if (it == raw_.end()) throw NativeError("Wan VAE: internal: no weight " + key);
    return it->second.as<float>();
  }

  /** Lays out `<key>.weight` rows [rowOffset, rowOffset + O) ([O, I, kt, kh, kw]; kt = 1 for 2D) for cuDNN. */
  void pack(Conv& L, const float* w, long long rowOffset, int O, int I, int kt, int k, float scale = 1.f, int opad = 0) {
    L.cin = kt * I;
    L.cout = O;
    L.coutPad = opad ? opad : O;
    L.k = k;
    const long long n = (long long)L.coutPad * k * k * L.cin;
    L.w.reserve(n * sizeof(T));
    packKernel<T><<<gridFor(n), kThreads, 0, stream_>>>(w, L.w.as<T>(), rowOffset, O, L.coutPad, I, kt, k, k, scale);
    CUDA_LAUNCH_CHECK();
    L.bias.reserve(L.coutPad * sizeof(float));
    CUDA_CHECK(cudaMemsetAsync(L.bias.ptr, 0, L.bias.bytes, stream_));
  }
  void setBias(Conv& L, const float* b, float scale = 1.f) {
    scaleKernel<<<gridFor(L.cout), kThreads, 0, stream_>>>(b, L.bias.as<float>(), L.cout, scale);
    CUDA_LAUNCH_CHECK();
  }
  void gamma(DeviceBuffer& g, const std::string& key, int C) {
    g.reserve(C * sizeof(float));
    scaleKernel<<<gridFor(C), kThreads, 0, stream_>>>(raw(key), g.as<float>(), C, std::sqrt(static_cast<float>(C)));
    CUDA_LAUNCH_CHECK();
  }
  void causal(Conv& L, const std::string& key, int O, int I, int k, int opad = 0) {
    pack(L, raw(key + ".weight"), 0, O, I, 3, k, 1.f, opad);
    setBias(L, raw(key + ".bias"));
  }

  void layOut() {
    const int z = dims_.zDim;
    {  // conv2 with z * std + mean folded in, fp32: W' = W diag(std), b' = b + W mean
      std::vector<float> w(z * z), b(z), mean(z, 0.f), sd(z, 1.f);
      CUDA_CHECK(cudaMemcpy(w.data(), raw("conv2.weight"), w.size() * sizeof(float), cudaMemcpyDeviceToHost));
      CUDA_CHECK(cudaMemcpy(b.data(), raw("conv2.bias"), b.size() * sizeof(float), cudaMemcpyDeviceToHost));
      if (raw_.count("latent.mean")) {
        CUDA_CHECK(cudaMemcpy(mean.data(), raw("latent.mean"), z * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(sd.data(), raw("latent.std"), z * sizeof(float), cudaMemcpyDeviceToHost));
      }
      for (int o = 0; o < z; o++) {
        for (int i = 0; i < z; i++) {
          b[o] += w[o * z + i] * mean[i];
          w[o * z + i] *= sd[i];
        }
      }
      w2_.reserve(w.size() * sizeof(float));
      b2_.reserve(b.size() * sizeof(float));
      CUDA_CHECK(cudaMemcpy(w2_.ptr, w.data(), w.size() * sizeof(float), cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemcpy(b2_.ptr, b.data(), b.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    for (Stage& s : stages_) {
      const std::string& key = s.key;
      switch (s.kind) {
        case Kind::Conv1:
          causal(s.a, key, s.cout, s.cin, 3);
          break;
        case Kind::Residual:
          gamma(s.gammaA, key + ".residual.0.gamma", s.cin);
          causal(s.a, key + ".residual.2", s.cout, s.cin, 3);
          gamma(s.gammaB, key + ".residual.3.gamma", s.cout);
          causal(s.b, key + ".residual.6", s.cout, s.cout, 3);
          if (s.hasShortcut) {
            pack(s.shortcut, raw(key + ".shortcut.weight"), 0, s.cout, s.cin, 1, 1);
            setBias(s.shortcut, raw(key + ".shortcut.bias"));
          }
          break;
        case Kind::Attention: {
          const int C = s.cin;
          const float scale = 1.f / std::sqrt(static_cast<float>(C));
          gamma(s.gammaA, key + ".norm.gamma", C);
          const float* qkvW = raw(key + ".to_qkv.weight");
          const float* qkvB = raw(key + ".to_qkv.bias");
          pack(s.q, qkvW, 0, C, C, 1, 1, scale);
          setBias(s.q, qkvB, scale);
          pack(s.k, qkvW, C, C, C, 1, 1);
          Conv v;
          pack(v, qkvW, 2 * C, C, C, 1, 1);
          s.wv.reserve(v.w.bytes);
          CUDA_CHECK(cudaMemcpyAsync(s.wv.ptr, v.w.ptr, v.w.bytes, cudaMemcpyDeviceToDevice, stream_));
          pack(s.proj, raw(key + ".proj.weight"), 0, C, C, 1, 1);
          foldBiasKernel<<<gridFor(C), kThreads, 0, stream_>>>(raw(key + ".proj.weight"), qkvB + 2 * C, raw(key + ".proj.bias"),
                                                               s.proj.bias.as<float>(), C);
          CUDA_LAUNCH_CHECK();
          CUDA_CHECK(cudaStreamSynchronize(stream_));  // v is freed on leaving
          break;
        }
        case Kind::Resample:
          pack(s.b, raw(key + ".resample.1.weight"), 0, s.cout, s.cin, 1, 3);
          setBias(s.b, raw(key + ".resample.1.bias"));
          if (s.temporal) causal(s.a, key + ".time_conv", 2 * s.cin, s.cin, 1);
          break;
        case Kind::Head:
          gamma(s.gammaA, "decoder.head.0.gamma", s.cin);
          causal(s.a, "decoder.head.2", 3, s.cin, 3, kOutPad);
          break;
      }
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  struct Sizes {
    long long act = 0, stack = 0, attn = 0, vt = 0;  // elements
  };
  /** Scratch sizes for a chunk of n latent frames (a walk over the stages). */
  Sizes sizesFor(long long n) const {
    const long long plane0 = (long long)dims_.latentHeight * dims_.latentWidth;
    Sizes z;
    z.act = n * plane0 * dims_.zDim;
    for (const Stage& s : stages_) {
      const long long p = plane0 * s.scale * s.scale;
      switch (s.kind) {
        case Kind::Conv1:
        case Kind::Residual:
          z.act = std::max(z.act, n * p * std::max(s.cin, s.cout));
          z.stack = std::max(z.stack, n * p * 3 * std::max(s.cin, s.cout));
          break;
        case Kind::Attention:
          z.act = std::max(z.act, n * p * s.cin);
          z.attn = std::max(z.attn, n * p * s.cin);
          z.vt = std::max(z.vt, p * s.cin);
          break;
        case Kind::Resample:
          if (s.temporal) {
            z.stack = std::max(z.stack, n * p * 3 * s.cin);
            z.act = std::max(z.act, n * p * 2 * s.cin);
            n *= 2;
          }
          z.act = std::max(z.act, n * 4 * p * s.cin);
          break;
        case Kind::Head:
          z.stack = std::max(z.stack, n * p * 3 * s.cin);
          z.act = std::max(z.act, n * p * std::max(s.cin, kOutPad));
          break;
      }
    }
    return z;
  }

  /** Latent frames per chunk: every tensor under 2^31 elements (cuDNN's legacy descriptors take int sizes), at most
      SSN_WANVAE_FRAMES_PER_RUN when set. */
  int framesPerRun() const {
    const Sizes one = sizesFor(1);
    long long per = std::max<long long>(1, ((1ll << 31) - 1) / std::max(one.act, one.stack));
    if (const char* env = std::getenv("SSN_WANVAE_FRAMES_PER_RUN")) per = std::min<long long>(per, std::max(1, std::atoi(env)));
    return static_cast<int>(std::min<long long>(per, 1 << 20));
  }

  /** Scratch for chunks of up to `frames` latent frames. */
  void ensureBuffers(int frames) {
    if (frames <= bufferFrames_) return;
    const long long plane0 = (long long)dims_.latentHeight * dims_.latentWidth;
    const Sizes z = sizesFor(frames);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (DeviceBuffer& b : act_) b.reserve(z.act * sizeof(T));
    S_.reserve(z.stack * sizeof(T));
    for (DeviceBuffer* b : {&xn_, &q_, &k_, &o_}) b->reserve(z.attn * sizeof(T));
    vt_.reserve(z.vt * sizeof(T));
    scores_.reserve(plane0 * plane0 * sizeof(T));
    bufferFrames_ = frames;
  }

  T* act(int i) { return act_[i].as<T>(); }
  static int other(std::initializer_list<int> used) {
    for (int i = 0; i < 4; i++)
      if (std::find(used.begin(), used.end(), i) == used.end()) return i;
    return -1;
  }

  /** y = conv(x) over n frames of [h, w, cin] (weights w), choosing the algorithm on first use of the geometry. */
  void runConv(const char* what, int n, int h, int w, int cin, int cout, int k, const void* x, const void* wt, void* y) {
    const ConvGeometry g{n, h, w, cin, cout, k};
    CudnnConv::Shape* s = conv_->shape(g);
    if (s->algo < 0) {
      const auto t0 = std::chrono::steady_clock::now();
      conv_->find(s, x, wt, y, stream_);
      planMs_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      plans_++;
      if (verbose_)
        std::fprintf(stderr, "wan-vae plan %-32s n=%d %dx%d %d->%d k%d: algo %d, workspace %zu, %.3f ms\n", what, n, h, w, cin,
                     cout, k, s->algo, s->workspace, s->findMs);
    }
    const int st = conv_->forward(s, x, wt, y, stream_);
    if (st != 0) throw NativeError(std::string("Wan VAE convolution ") + what + " failed: " + conv_->errorString(st));
  }
  void runConv(const Conv& L, const std::string& what, int n, int h, int w, const void* x, void* y) {
    runConv(what.c_str(), n, h, w, L.cin, L.coutPad, L.k, x, L.w.ptr, y);
  }

  void bias(T* y, const float* b, const T* skip, long long rows, int C) {
    const long long total = rows * C;
    biasAddKernel<T><<<gridFor(total / 8), kThreads, 0, stream_>>>(y, b, skip, total, C);
    CUDA_LAUNCH_CHECK();
  }

  /** S = the stacked window of [cache ‖ f(x)] (see stackKernel), and the cache becomes its last two frames. */
  void stack(const T* x, int cache, const float* inBias, const float* g, bool silu, int n, long long plane, int C) {
    const long long warps = (long long)(n + kCacheFrames) * plane;
    stackKernel<T><<<gridFor(warps * 32), kThreads, 0, stream_>>>(x, caches_[cache].as<T>(), S_.as<T>(), inBias, g, silu, n, plane, C);
    CUDA_LAUNCH_CHECK();
    cacheOutKernel<T><<<gridFor((long long)kCacheFrames * plane * C), kThreads, 0, stream_>>>(S_.as<T>(), caches_[cache].as<T>(), n, plane, C);
    CUDA_LAUNCH_CHECK();
  }

  /** Latent frames [f0, f0 + n) of the uploaded block; RGB24 into rgb; returns the video frames written. */
  long long runChunk(int F, int f0, int n, bool first, uint8_t* rgb) {
    const int z = dims_.zDim;
    const int h0 = dims_.latentHeight, w0 = dims_.latentWidth;
    const long long plane0 = (long long)h0 * w0;
    conv2Kernel<T><<<gridFor(n * plane0 * z), kThreads, 0, stream_>>>(latent_.as<float>(), F, f0, n, plane0, z, w2_.as<float>(),
                                                                       b2_.as<float>(), act(0));
    CUDA_LAUNCH_CHECK();
    int x = 0;
    for (Stage& s : stages_) {
      const int h = h0 * s.scale, w = w0 * s.scale;
      const long long p = (long long)h * w;
      switch (s.kind) {
        case Kind::Conv1: {
          stack(act(x), s.cacheA, nullptr, nullptr, false, n, p, s.cin);
          const int y = other({x});
          runConv(s.a, s.key, n, h, w, S_.ptr, act(y));
          bias(act(y), s.a.bias.as<float>(), nullptr, n * p, s.cout);
          x = y;
          break;
        }
        case Kind::Residual: {
          int skip = x;
          if (s.hasShortcut) {
            skip = other({x});
            runConv(s.shortcut, s.key + ".shortcut", n, h, w, act(x), act(skip));
            bias(act(skip), s.shortcut.bias.as<float>(), nullptr, n * p, s.cout);
          }
          const int a = other({x, skip}), b = other({x, skip, a});
          stack(act(x), s.cacheA, nullptr, s.gammaA.as<float>(), true, n, p, s.cin);
          runConv(s.a, s.key + ".residual.2", n, h, w, S_.ptr, act(a));
          stack(act(a), s.cacheB, s.a.bias.as<float>(), s.gammaB.as<float>(), true, n, p, s.cout);
          runConv(s.b, s.key + ".residual.6", n, h, w, S_.ptr, act(b));
          bias(act(b), s.b.bias.as<float>(), act(skip), n * p, s.cout);
          x = b;
          break;
        }
        case Kind::Attention:
          attention(s, x, n, h, w);
          break;
        case Kind::Resample: {
          const int C = s.cin;
          const int u = other({x});
          if (s.temporal && !first) {
            stack(act(x), s.cacheA, nullptr, nullptr, false, n, p, C);
            const int g = other({x, u});
            runConv(s.a, s.key + ".time_conv", n, h, w, S_.ptr, act(g));
            upsampleKernel<T><<<gridFor((long long)n * 2 * 4 * p * C / 8), kThreads, 0, stream_>>>(act(g), s.a.bias.as<float>(),
                                                                                                   act(u), n, 2, h, w, C);
            n *= 2;
          } else {
            upsampleKernel<T><<<gridFor((long long)n * 4 * p * C / 8), kThreads, 0, stream_>>>(act(x), nullptr, act(u), n, 1, h, w, C);
          }
          CUDA_LAUNCH_CHECK();
          const int y = other({u});
          runConv(s.b, s.key + ".resample.1", n, 2 * h, 2 * w, act(u), act(y));
          bias(act(y), s.b.bias.as<float>(), nullptr, n * 4 * p, s.cout);
          x = y;
          break;
        }
        case Kind::Head: {
          stack(act(x), s.cacheA, nullptr, s.gammaA.as<float>(), true, n, p, s.cin);
          const int y = other({x});
          runConv(s.a, "decoder.head.2", n, h, w, S_.ptr, act(y));
          toRgbKernel<T><<<gridFor(n * p), kThreads, 0, stream_>>>(act(y), kOutPad, s.a.bias.as<float>(), rgb, n * p);
          CUDA_LAUNCH_CHECK();
          break;
        }
      }
    }
    return n;
  }

  /** x <- x + proj(attention(norm(x))), per frame (see the file's head). */
  void attention(Stage& s, int x, int n, int h, int w) {
    const int C = s.cin;
    const long long p = (long long)h * w;
    const int P = static_cast<int>(p);
    normKernel<T><<<gridFor(n * p * 32), kThreads, 0, stream_>>>(act(x), xn_.as<T>(), s.gammaA.as<float>(), n * p, C);
    CUDA_LAUNCH_CHECK();
    runConv(s.q, s.key + ".q", n, h, w, xn_.ptr, q_.ptr);
    bias(q_.as<T>(), s.q.bias.as<float>(), nullptr, n * p, C);
    runConv(s.k, s.key + ".k", n, h, w, xn_.ptr, k_.ptr);
    for (int f = 0; f < n; f++) {
      const T* xnf = xn_.as<T>() + f * p * C;
      // v^T [C, P] = Wv xn^T: input Wv as [1, C, 1, C], filter xn as [P, 1, 1, C]
      runConv("attention v^T", 1, C, 1, C, P, 1, s.wv.ptr, xnf, vt_.ptr);
      // scores [P, P] = q k^T: input q as [1, P, 1, C], filter k as [P, 1, 1, C]
      runConv("attention q k^T", 1, P, 1, C, P, 1, q_.as<T>() + f * p * C, k_.as<T>() + f * p * C, scores_.ptr);
      softmaxKernel<T><<<P, kThreads, 0, stream_>>>(scores_.as<T>(), P);
      CUDA_LAUNCH_CHECK();
      // o [P, C] = softmax(scores) v: input [1, P, 1, P], filter v^T as [C, 1, 1, P]
      runConv("attention P v", 1, P, 1, P, C, 1, scores_.ptr, vt_.ptr, o_.as<T>() + f * p * C);
    }
    runConv(s.proj, s.key + ".proj", n, h, w, o_.ptr, xn_.ptr);
    bias(xn_.as<T>(), s.proj.bias.as<float>(), act(x), n * p, C);
    CUDA_CHECK(cudaMemcpyAsync(act(x), xn_.ptr, (size_t)n * p * C * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
  }

  WanVaeDims dims_;
  int device_;
  bool verbose_ = std::getenv("SSN_WANVAE_VERBOSE") != nullptr;
  std::unique_ptr<CudnnConv> conv_;
  cudaStream_t stream_ = nullptr;
  DecodeTimer timer_;
  std::map<std::string, std::pair<int64_t, std::string>> expected_;  // key -> (values, shape as text)
  std::map<std::string, DeviceBuffer> raw_;                          // given weights, fp32, until finalize
  std::deque<Stage> stages_;
  std::deque<DeviceBuffer> caches_;
  DeviceBuffer w2_, b2_;
  DeviceBuffer act_[4], S_, latent_, rgb_, xn_, q_, k_, o_, vt_, scores_;
  int bufferFrames_ = 0, perRun_ = 1;
  bool finalized_ = false, started_ = false;
  int plans_ = 0;
  double planMs_ = 0;
};

}  // namespace

std::unique_ptr<WanVaeDecoder> makeWanVaeDecoder(const WanVaeDims& dims, int device, int precision) {
  switch (precision) {
    case 0: return std::make_unique<Impl<bf16>>(dims, device);
    case 1: return std::make_unique<Impl<float>>(dims, device);
    case 2: return std::make_unique<Impl<__half>>(dims, device);
    default: throw NativeError("Wan VAE precision must be 0 (bf16), 1 (fp32) or 2 (fp16), got " + std::to_string(precision));
  }
}

}  // namespace ssn
