// TAEHV decoder on the GPU (see taehv-decoder.h). Per block of T latent frames, all of its time steps at once:
//
//   latent [C, T, H, W] fp32 --tanh clamp, to NHWC--> conv 3x3 (+bias, ReLU)
//   3 levels s = 0, 1, 2 (frames n = T, T, 2T; size H, W times 2^s; channels c_s):
//     3 x MemBlock: z = [x_t | x_{t-1}] (x_{-1} = the memory), ReLU(conv(ReLU(conv(ReLU(conv(z))))) + x), memory = x_{n-1}
//     TGrow: 1x1 conv c -> S c at the low resolution, then one kernel does the nearest x2 upsample and moves channel
//            group k to time step k (a pointwise conv commutes with nearest upsampling, so this is 4x cheaper)
//     conv 3x3 c_s -> c_{s+1} (no bias; ReLU after the last level)
//   conv 3x3 c_3 -> 3 (+bias, clamp to [0, 1], to RGB24), the stream's first 3 frames dropped.
//
// Convolutions: cuDNN (cudnn-conv.h), the algorithm chosen per geometry by timing on first use; a convolution
// followed by bias + ReLU (+ the MemBlock's skip) runs as cuDNN's fused conv-bias-activation when cuDNN takes it
// and it is faster than the plain convolution + this file's epilogue kernel (timed once per geometry).
// SSN_TAEHV_FUSED=0 never fuses, =1 fuses whenever cuDNN takes it; SSN_TAEHV_VERBOSE=1 prints each plan to stderr.
#include "taehv-decoder.h"
#include "cudnn-conv.h"
#include "decode-timer.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <utility>
#include <vector>

namespace ssn {
namespace {

constexpr int kFramesToTrim = 3;  // the decoder's 4x time upscale less one: alignment with the Wan VAE
constexpr int kLevels = 3;
constexpr int kOutPad = 8;  // the last convolution's 3 output channels, padded (zero weights) for tensor cores
constexpr int kThreads = 256;

__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T fromFloat(float v);
template <> __device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 fromFloat<bf16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ __half fromFloat<__half>(float v) { return __float2half(v); }

int gridFor(long long n) { return static_cast<int>(std::min<long long>((n + kThreads - 1) / kThreads, 1 << 20)); }
#define GRID_STRIDE(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

/** latent [C, frames, plane] fp32 -> tanh(x / 3) * 3 as [frames, plane, C] */
template <typename T>
__global__ void latentInKernel(const float* __restrict__ in, T* __restrict__ out, int C, int frames, long long plane) {
  GRID_STRIDE(i, (long long)frames * plane * C) {
    const int c = static_cast<int>(i % C);
    const long long q = i / C;
    const float v = in[((long long)c * frames + q / plane) * plane + q % plane];
    out[i] = fromFloat<T>(tanhf(v / 3.f) * 3.f);
  }
}

/** z[t, p] = [x[t, p] | (t ? x[t - 1, p] : state[p])], in units U of the channel bytes (cu units per C). */
template <typename U>
__global__ void assembleKernel(const U* __restrict__ x, const U* __restrict__ state, U* __restrict__ z, long long plane,
                               int frames, int cu) {
  GRID_STRIDE(i, (long long)frames * plane * 2 * cu) {
    const int j = static_cast<int>(i % (2 * cu));
    const long long q = i / (2 * cu);  // t * plane + p
    U v;
    if (j < cu) v = x[q * cu + j];
    else if (q < plane) v = state[q * cu + j - cu];
    else v = x[(q - plane) * cu + j - cu];
    z[i] = v;
  }
}

/** g [n, h, w, S * C] -> u [n * S, 2h, 2w, C]: nearest x2 upsample, channel group s to time step t * S + s. */
template <typename U>
__global__ void growKernel(const U* __restrict__ g, U* __restrict__ u, int n, int S, int h, int w, int cu) {
  const int H = 2 * h, W = 2 * w;
  GRID_STRIDE(i, (long long)n * S * H * W * cu) {
    const int j = static_cast<int>(i % cu);
    long long q = i / cu;
    const int X = static_cast<int>(q % W);
    q /= W;
    const int Y = static_cast<int>(q % H);
    q /= H;  // output frame nn * S + s
    const int s = static_cast<int>(q % S);
    const long long nn = q / S;
    u[i] = g[((nn * h + (Y >> 1)) * w + (X >> 1)) * ((long long)S * cu) + (long long)s * cu + j];
  }
}

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

/** y = ReLU(y + bias[c] (+ z)) over rows of C channels, V channels per thread. */
template <typename T, int V>
__global__ void biasReluKernel(T* __restrict__ y, const T* __restrict__ z, const float* __restrict__ bias, long long total,
                               int C) {
  using P = Pack<T, V>;
  GRID_STRIDE(i, total / V) {
    const int c = static_cast<int>((i * V) % C);
    P a = reinterpret_cast<const P*>(y)[i];
    P b;
    if (z) b = reinterpret_cast<const P*>(z)[i];
#pragma unroll
    for (int k = 0; k < V; k++) {
      float v = toFloat(a.v[k]) + bias[c + k];
      if (z) v += toFloat(b.v[k]);
      a.v[k] = fromFloat<T>(fmaxf(v, 0.f));
    }
    reinterpret_cast<P*>(y)[i] = a;
  }
}

/** o [frames, plane, cp] (channels 0-2 used) -> RGB24 of frames [skip, frames): round(clamp(o + bias, 0, 1) * 255) */
template <typename T>
__global__ void toRgbKernel(const T* __restrict__ o, int cp, const float* __restrict__ bias, uint8_t* __restrict__ out,
                            long long pixels, long long skipPixels) {
  GRID_STRIDE(i, pixels) {
    const T* src = o + (i + skipPixels) * cp;
#pragma unroll
    for (int ch = 0; ch < 3; ch++) {
      const float v = fminf(fmaxf(toFloat(src[ch]) + bias[ch], 0.f), 1.f);
      out[i * 3 + ch] = static_cast<uint8_t>(__float2int_rn(v * 255.f));
    }
  }
}

/** PyTorch's [rows, I, k, k] fp32 (rows from rowOffset) -> [opad, k, k, I] (cuDNN's NHWC filter), zero rows past O. */
template <typename T>
__global__ void weightKernel(const float* __restrict__ w, T* __restrict__ out, long long rowOffset, int O, int opad, int I,
                             int k) {
  GRID_STRIDE(i, (long long)opad * k * k * I) {
    const int ci = static_cast<int>(i % I);
    long long q = i / I;
    const int kx = static_cast<int>(q % k);
    q /= k;
    const int ky = static_cast<int>(q % k);
    const long long o = q / k;
    out[i] = fromFloat<T>(o < O ? w[(((o + rowOffset) * I + ci) * k + ky) * k + kx] : 0.f);
  }
}

template <typename T>
__global__ void castKernel(const float* __restrict__ in, T* __restrict__ out, long long n) {
  GRID_STRIDE(i, n) out[i] = fromFloat<T>(in[i]);
}

/** Runs f with the widest unit type that divides `bytes` (16, 8, 4 or 2 bytes). */
template <typename F>
void withUnit(long long bytes, F&& f) {
  if (bytes % 16 == 0) f(uint4{});
  else if (bytes % 8 == 0) f(uint2{});
  else if (bytes % 4 == 0) f(uint32_t{});
  else f(uint16_t{});
}

enum class Epi { None, Relu, ReluSkip };

struct ConvLayer {
  std::string key;  // `<key>.weight`, `<key>.bias`
  bool hasBias;
  int cin, cout, coutPad, k;
  Epi epi;
  DeviceBuffer w, bias32, biasT;  // bias32 / biasT: zeros when the layer has no bias (the fused path needs one)
  bool haveWeight = false, haveBias = false;
};

struct Choice {
  CudnnConv::Shape* shape = nullptr;
  int mode = 0;  // 0: convolution + own epilogue; 1: fused, bias in the storage type; 2: fused, fp32 bias
};

enum class FusePolicy { Never, Always, Timed };
FusePolicy fusePolicy() {
  const char* env = std::getenv("SSN_TAEHV_FUSED");
  if (!env || !*env || !std::strcmp(env, "auto")) return FusePolicy::Timed;
  if (!std::strcmp(env, "0")) return FusePolicy::Never;
  if (!std::strcmp(env, "1")) return FusePolicy::Always;
  throw NativeError(std::string("SSN_TAEHV_FUSED must be 0, 1 or auto, got '") + env + "'");
}

template <typename T>
constexpr ConvType convType() {
  return std::is_same<T, float>::value ? ConvType::Fp32 : std::is_same<T, bf16>::value ? ConvType::Bf16 : ConvType::Fp16;
}

template <typename T>
class Impl final : public TaehvDecoder {
 public:
  Impl(const TaehvDims& d, int device) : dims_(d), device_(device), policy_(fusePolicy()) {
    if (d.latentChannels <= 0 || d.latentHeight <= 0 || d.latentWidth <= 0)
      throw NativeError("TAEHV: latent channels, height and width must be positive");
    for (int c : d.channels)
      if (c <= 0) throw NativeError("TAEHV: channels must be positive");
    CUDA_CHECK(cudaSetDevice(device));
    conv_ = CudnnConv::create(device, convType<T>());
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    timer_.create();
    CUDA_CHECK(cudaEventCreate(&trialStart_));
    CUDA_CHECK(cudaEventCreate(&trialStop_));
    buildLayers();
    for (int s = 0; s < kLevels; s++) {
      for (int m = 0; m < 3; m++) {
        DeviceBuffer& b = state_[s * 3 + m];
        b.reserve(statePlane(s) * d.channels[s] * sizeof(T));
      }
    }
    reset();
  }

  ~Impl() override {
    cudaSetDevice(device_);
    if (stream_) cudaStreamSynchronize(stream_);
    for (cudaEvent_t e : {trialStart_, trialStop_})
      if (e) cudaEventDestroy(e);
    if (stream_) cudaStreamDestroy(stream_);
  }

  int device() const override { return device_; }
  int width() const override { return dims_.latentWidth << kLevels; }
  int height() const override { return dims_.latentHeight << kLevels; }

  void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) override {
    if (key.rfind("encoder.", 0) == 0) return;  // the checkpoint's other half
    for (ConvLayer& L : layers_) {
      const bool isWeight = key == L.key + ".weight";
      const bool isBias = L.hasBias && key == L.key + ".bias";
      if (!isWeight && !isBias) continue;
      DeviceBuffer tmp;
      tmp.reserve(std::max<int64_t>(count, 1) * sizeof(float));
      CUDA_CHECK(cudaMemcpyAsync(tmp.ptr, data, count * sizeof(float), onDevice ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice,
                                 stream_));
      if (isWeight) {
        const int64_t perRow = (int64_t)L.cin * L.k * L.k;
        const int64_t rows = count / perRow;
        if (count % perRow != 0 || rows < L.cout) {
          throw NativeError("TAEHV weight " + key + ": " + std::to_string(count) + " values, expected [" +
                            std::to_string(L.cout) + ", " + std::to_string(L.cin) + ", " + std::to_string(L.k) + ", " +
                            std::to_string(L.k) + "]" + (L.k == 1 ? " (or more rows, of which the last are used)" : ""));
        }
        if (rows != L.cout && L.k != 1) {
          throw NativeError("TAEHV weight " + key + ": " + std::to_string(rows) + " output channels, expected " + std::to_string(L.cout));
        }
        const long long n = (long long)L.coutPad * L.k * L.k * L.cin;
        L.w.reserve(n * sizeof(T));
        weightKernel<T><<<gridFor(n), kThreads, 0, stream_>>>(tmp.as<float>(), L.w.as<T>(), rows - L.cout, L.cout,
                                                              L.coutPad, L.cin, L.k);
        CUDA_LAUNCH_CHECK();
        L.haveWeight = true;
      } else {
        if (count != L.cout)
          throw NativeError("TAEHV weight " + key + ": " + std::to_string(count) + " values, expected " + std::to_string(L.cout));
        CUDA_CHECK(cudaMemsetAsync(L.bias32.ptr, 0, L.coutPad * sizeof(float), stream_));
        CUDA_CHECK(cudaMemcpyAsync(L.bias32.ptr, tmp.ptr, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
        castKernel<T><<<gridFor(L.coutPad), kThreads, 0, stream_>>>(L.bias32.as<float>(), L.biasT.as<T>(), L.coutPad);
        CUDA_LAUNCH_CHECK();
        L.haveBias = true;
      }
      CUDA_CHECK(cudaStreamSynchronize(stream_));  // tmp is freed on return
      return;
    }
    throw NativeError("TAEHV: '" + key + "' is not a weight of the decoder (expected decoder.<layer>... keys)");
  }

  void finalize(int warmupFrames) override {
    for (const ConvLayer& L : layers_) {
      if (!L.haveWeight) throw NativeError("TAEHV weight missing: " + L.key + ".weight");
      if (L.hasBias && !L.haveBias) throw NativeError("TAEHV weight missing: " + L.key + ".bias");
    }
    finalized_ = true;
    if (warmupFrames > 0) {
      std::vector<float> zeros((size_t)dims_.latentChannels * warmupFrames * dims_.latentHeight * dims_.latentWidth, 0.f);
      std::vector<uint8_t> out((size_t)4 * warmupFrames * width() * height() * 3);
      decode(zeros.data(), warmupFrames, out.data(), static_cast<int64_t>(out.size()));
      reset();
    }
  }

  int decode(const float* latent, int frames, uint8_t* out, int64_t capacity) override {
    if (!finalized_) throw NativeError("TAEHV: decode before finalize");
    if (frames < 1) throw NativeError("TAEHV: a block needs at least one latent frame");
    const int trim = started_ ? 0 : kFramesToTrim;
    const int nOut = 4 * frames - trim;
    const long long outPlane = (long long)width() * height();
    if (capacity < nOut * outPlane * 3)
      throw NativeError("TAEHV: output holds " + std::to_string(capacity) + " bytes, " + std::to_string(nOut) +
                        " frames need " + std::to_string(nOut * outPlane * 3));
    ensureBuffers(frames);
    const int C = dims_.latentChannels;
    const int h0 = dims_.latentHeight, w0 = dims_.latentWidth;
    const long long plane0 = (long long)h0 * w0;

    timer_.started(stream_);
    CUDA_CHECK(cudaMemcpyAsync(latent_.ptr, latent, (size_t)C * frames * plane0 * sizeof(float), cudaMemcpyHostToDevice, stream_));
    latentInKernel<T><<<gridFor(frames * plane0 * C), kThreads, 0, stream_>>>(latent_.as<float>(), act(0), C, frames, plane0);
    CUDA_LAUNCH_CHECK();
    timer_.uploaded(stream_);
    runConv(inLayer_, frames, h0, w0, act(0), act(1), nullptr);
    int x = 1;
    int n = frames;
    for (int s = 0; s < kLevels; s++) {
      const int h = h0 << s, w = w0 << s, c = dims_.channels[s];
      const long long plane = (long long)h * w;
      for (int m = 0; m < 3; m++) {
        const int mb = s * 3 + m;
        assemble(act(x), state_[mb].as<T>(), z_.as<T>(), plane, n, c);
        CUDA_CHECK(cudaMemcpyAsync(state_[mb].ptr, act(x) + (n - 1) * plane * c, plane * c * sizeof(T),
                                   cudaMemcpyDeviceToDevice, stream_));
        const int a = other({x}), b = other({x, a}), r = other({x, a, b});
        runConv(memLayers_[mb][0], n, h, w, z_.as<T>(), act(a), nullptr);
        runConv(memLayers_[mb][1], n, h, w, act(a), act(b), nullptr);
        runConv(memLayers_[mb][2], n, h, w, act(b), act(r), act(x));
        x = r;
      }
      const int S = growStride(s);
      const int g = other({x});
      runConv(growLayers_[s], n, h, w, act(x), act(g), nullptr);
      const int u = other({g});
      withUnit((long long)c * sizeof(T), [&](auto unit) {
        using U = decltype(unit);
        const int cu = static_cast<int>(c * sizeof(T) / sizeof(U));
        growKernel<U><<<gridFor((long long)n * S * 4 * plane * cu), kThreads, 0, stream_>>>(
            reinterpret_cast<const U*>(act(g)), reinterpret_cast<U*>(act(u)), n, S, h, w, cu);
      });
      CUDA_LAUNCH_CHECK();
      n *= S;
      const int p = other({u});
      runConv(projLayers_[s], n, 2 * h, 2 * w, act(u), act(p), nullptr);
      x = p;
    }
    const int hO = h0 << kLevels, wO = w0 << kLevels;
    const int o = other({x});
    runConv(outLayer_, n, hO, wO, act(x), act(o), nullptr);
    toRgbKernel<T><<<gridFor(nOut * outPlane), kThreads, 0, stream_>>>(act(o), kOutPad, layers_[outLayer_].bias32.as<float>(),
                                                                      rgb_.as<uint8_t>(), nOut * outPlane, trim * outPlane);
    CUDA_LAUNCH_CHECK();
    timer_.finish(stream_, out, rgb_.ptr, (size_t)nOut * outPlane * 3);
    started_ = true;
    return nOut;
  }

  void reset() override {
    for (DeviceBuffer& b : state_) CUDA_CHECK(cudaMemsetAsync(b.ptr, 0, b.bytes, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    started_ = false;
  }

  void stats(int* plans, double* planMs, double* lastMs) const override {
    if (plans) *plans = static_cast<int>(choices_.size());
    if (planMs) *planMs = planMs_;
    if (lastMs) *lastMs = timer_.lastMs();
  }

  void lastSplit(double* ms) const override { timer_.lastSplit(ms); }

  std::string describe() const override {
    int withEpilogue = 0, fused = 0;
    for (const auto& kv : choices_) {
      if (layers_[kv.first.first].epi == Epi::None) continue;
      withEpilogue++;
      if (kv.second.mode) fused++;
    }
    const char* type = std::is_same<T, float>::value ? "fp32" : std::is_same<T, bf16>::value ? "bf16" : "fp16";
    return CudnnConv::describe() + ", " + type + ", cuDNN's fused bias+ReLU in " + std::to_string(fused) + " of " +
           std::to_string(withEpilogue) + " planned convolutions with an epilogue";
  }

 private:
  static int growStride(int level) { return level == 0 ? 1 : 2; }  // taew2_1: time upscale off, x2, x2
  long long statePlane(int level) const { return ((long long)dims_.latentHeight << level) * (dims_.latentWidth << level); }
  T* act(int i) { return act_[i].as<T>(); }
  static int other(std::initializer_list<int> used) {
    for (int i = 0; i < 4; i++)
      if (std::find(used.begin(), used.end(), i) == used.end()) return i;
    return -1;
  }

  int addLayer(const std::string& key, bool bias, int cin, int cout, int k, Epi epi, int coutPad = 0) {
    layers_.emplace_back();
    ConvLayer& L = layers_.back();
    L.key = key;
    L.hasBias = bias;
    L.cin = cin;
    L.cout = cout;
    L.coutPad = coutPad ? coutPad : cout;
    L.k = k;
    L.epi = epi;
    L.bias32.reserve(L.coutPad * sizeof(float));
    L.biasT.reserve(L.coutPad * sizeof(T));
    CUDA_CHECK(cudaMemset(L.bias32.ptr, 0, L.bias32.bytes));
    CUDA_CHECK(cudaMemset(L.biasT.ptr, 0, L.biasT.bytes));
    return static_cast<int>(layers_.size()) - 1;
  }

  void buildLayers() {
    const int* ch = dims_.channels;
    inLayer_ = addLayer("decoder.1", true, dims_.latentChannels, ch[0], 3, Epi::Relu);
    for (int s = 0; s < kLevels; s++) {
      const int c = ch[s];
      for (int m = 0; m < 3; m++) {
        const std::string base = "decoder." + std::to_string(3 + 6 * s + m) + ".conv.";
        memLayers_[s * 3 + m][0] = addLayer(base + "0", true, 2 * c, c, 3, Epi::Relu);
        memLayers_[s * 3 + m][1] = addLayer(base + "2", true, c, c, 3, Epi::Relu);
        memLayers_[s * 3 + m][2] = addLayer(base + "4", true, c, c, 3, Epi::ReluSkip);
      }
      growLayers_[s] = addLayer("decoder." + std::to_string(7 + 6 * s) + ".conv", false, c, growStride(s) * c, 1, Epi::None);
      projLayers_[s] = addLayer("decoder." + std::to_string(8 + 6 * s), false, c, ch[s + 1], 3,
                                s == kLevels - 1 ? Epi::Relu : Epi::None);  // decoder.21 is a ReLU
    }
    outLayer_ = addLayer("decoder.22", true, ch[3], 3, 3, Epi::None, kOutPad);  // bias applied by toRgbKernel
  }

  /** Scratch for blocks of `frames` latent frames: four activation buffers and the MemBlocks' concatenation. */
  void ensureBuffers(int frames) {
    if (frames <= bufferFrames_) return;
    const long long plane0 = (long long)dims_.latentHeight * dims_.latentWidth;
    const int* ch = dims_.channels;
    long long maxAct = (long long)frames * plane0 * std::max(dims_.latentChannels, ch[0]), maxZ = 0;
    long long n = frames;
    for (int s = 0; s < kLevels; s++) {
      const long long plane = statePlane(s), S = growStride(s);
      maxAct = std::max({maxAct, n * plane * ch[s] * S, n * S * 4 * plane * ch[s], n * S * 4 * plane * ch[s + 1]});
      maxZ = std::max(maxZ, n * plane * 2 * ch[s]);
      n *= S;
    }
    maxAct = std::max(maxAct, n * statePlane(kLevels) * kOutPad);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (DeviceBuffer& b : act_) {
      b.reserve(maxAct * sizeof(T));
      CUDA_CHECK(cudaMemset(b.ptr, 0, b.bytes));
    }
    z_.reserve(maxZ * sizeof(T));
    latent_.reserve((size_t)dims_.latentChannels * frames * plane0 * sizeof(float));
    rgb_.reserve((size_t)n * statePlane(kLevels) * 3);
    bufferFrames_ = frames;
  }

  void assemble(const T* x, const T* state, T* z, long long plane, int n, int c) {
    withUnit((long long)c * sizeof(T), [&](auto unit) {
      using U = decltype(unit);
      const int cu = static_cast<int>(c * sizeof(T) / sizeof(U));
      assembleKernel<U><<<gridFor(n * plane * 2 * cu), kThreads, 0, stream_>>>(
          reinterpret_cast<const U*>(x), reinterpret_cast<const U*>(state), reinterpret_cast<U*>(z), plane, n, cu);
    });
    CUDA_LAUNCH_CHECK();
  }

  void epilogue(const ConvLayer& L, T* y, const T* z, long long elements) {
    constexpr int V = std::is_same<T, float>::value ? 4 : 8;
    if (L.coutPad % V == 0)
      biasReluKernel<T, V><<<gridFor(elements / V), kThreads, 0, stream_>>>(y, z, L.bias32.as<float>(), elements, L.coutPad);
    else
      biasReluKernel<T, 1><<<gridFor(elements), kThreads, 0, stream_>>>(y, z, L.bias32.as<float>(), elements, L.coutPad);
    CUDA_LAUNCH_CHECK();
  }

  int launch(const ConvLayer& L, const Choice& c, const T* x, T* y, const T* z, long long elements) {
    if (c.mode) return conv_->forwardBiasRelu(c.shape, x, L.w.ptr, z, c.mode == 1 ? L.biasT.ptr : L.bias32.ptr, c.mode == 2, y, stream_);
    const int st = conv_->forward(c.shape, x, L.w.ptr, y, stream_);
    if (st == 0 && L.epi != Epi::None) epilogue(L, y, L.epi == Epi::ReluSkip ? z : nullptr, elements);
    return st;
  }

  /** Milliseconds per call of f, after one untimed call. */
  template <typename F>
  double timeCalls(F&& f, int reps = 3) {
    f();
    CUDA_CHECK(cudaEventRecord(trialStart_, stream_));
    for (int i = 0; i < reps; i++) f();
    CUDA_CHECK(cudaEventRecord(trialStop_, stream_));
    CUDA_CHECK(cudaEventSynchronize(trialStop_));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, trialStart_, trialStop_));
    return ms / reps;
  }

  /** y = layer(x) (+ z for a MemBlock's last convolution); plans the geometry on first use (on these buffers). */
  void runConv(int li, int n, int h, int w, const T* x, T* y, const T* z) {
    const ConvLayer& L = layers_[li];
    const ConvGeometry g{n, h, w, L.cin, L.coutPad, L.k};
    const long long elements = (long long)n * h * w * L.coutPad;
    auto key = std::make_pair(li, g);
    auto it = choices_.find(key);
    if (it == choices_.end()) {
      const auto t0 = std::chrono::steady_clock::now();
      Choice c;
      double plainMs = -1, fusedMs = -1;
      c.shape = conv_->shape(g);
      if (c.shape->algo < 0) conv_->find(c.shape, x, L.w.ptr, y, stream_);
      if (L.epi != Epi::None && policy_ != FusePolicy::Never) {
        int supported = 0;
        for (int mode : {1, 2}) {
          Choice f = c;
          f.mode = mode;
          if (launch(L, f, x, y, z, elements) == 0) {
            supported = mode;
            break;
          }
        }
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        if (supported && policy_ == FusePolicy::Always) {
          c.mode = supported;
        } else if (supported) {
          Choice f = c;
          f.mode = supported;
          plainMs = timeCalls([&] { launch(L, c, x, y, z, elements); });
          fusedMs = timeCalls([&] { launch(L, f, x, y, z, elements); });
          if (fusedMs < plainMs) c.mode = supported;
        }
      }
      if (verbose_) {
        std::fprintf(stderr, "taehv plan %-22s n=%d %dx%d %d->%d k%d: algo %d, workspace %zu, cudnnFind %.3f ms, %s (plain+epilogue %.3f ms, fused %.3f ms)\n",
                     L.key.c_str(), n, h, w, L.cin, L.coutPad, L.k, c.shape->algo, c.shape->workspace, c.shape->findMs,
                     c.mode ? "fused" : "not fused", plainMs, fusedMs);
      }
      it = choices_.emplace(key, c).first;
      planMs_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    const int st = launch(L, it->second, x, y, z, elements);
    if (st != 0) throw NativeError("TAEHV convolution " + L.key + " failed: " + conv_->errorString(st));
  }

  TaehvDims dims_;
  int device_;
  FusePolicy policy_;
  bool verbose_ = std::getenv("SSN_TAEHV_VERBOSE") != nullptr;
  std::unique_ptr<CudnnConv> conv_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t trialStart_ = nullptr, trialStop_ = nullptr;
  DecodeTimer timer_;
  std::deque<ConvLayer> layers_;  // stable addresses (DeviceBuffer does not move)
  int inLayer_ = -1, outLayer_ = -1;
  int memLayers_[9][3]{};
  int growLayers_[kLevels]{}, projLayers_[kLevels]{};
  std::map<std::pair<int, ConvGeometry>, Choice> choices_;
  DeviceBuffer state_[9];
  DeviceBuffer act_[4], z_, latent_, rgb_;
  int bufferFrames_ = 0;
  bool finalized_ = false, started_ = false;
  double planMs_ = 0;
};

}  // namespace

std::unique_ptr<TaehvDecoder> makeTaehvDecoder(const TaehvDims& dims, int device, int precision) {
  switch (precision) {
    case 0: return std::make_unique<Impl<bf16>>(dims, device);
    case 1: return std::make_unique<Impl<float>>(dims, device);
    case 2: return std::make_unique<Impl<__half>>(dims, device);
    default: throw NativeError("TAEHV precision must be 0 (bf16), 1 (fp32) or 2 (fp16), got " + std::to_string(precision));
  }
}

}  // namespace ssn
