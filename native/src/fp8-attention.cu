#include "fp8-attention.h"
#include "key-split.h"
#include "kernels.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace ssn {
namespace {

// runLayer's kept keys and values: the block rows quantised later with the same scale may reach this many times the
// largest value the scale was taken from before they saturate (E4M3 is floating point, so the room costs no precision
// above its smallest normal numbers)
constexpr float kKvHeadroom = 2.f;
constexpr int kThreads = 256;
constexpr int kVec = 8;  // bf16 elements a thread moves at once (16 bytes)

// Float slots of the scalars buffer, 16 bytes apart (cuDNN reads its scalars 16-byte aligned). kAmax holds the
// largest |q|, |k|, |v| as float bits (three words), found with atomicMax: non-negative floats order as their bits do.
enum Slot {
  kAmax, kScaleQ, kScaleK, kScaleV, kDescaleQ, kDescaleK, kDescaleV, kDescaleS, kScaleS, kScaleO, kDescaleO, kAmaxS,
  kAmaxO, kSlots
};
__host__ __device__ constexpr int at(int slot) { return slot * 4; }

int gridFor(size_t vectors) {
  return static_cast<int>(std::min<size_t>((vectors + kThreads - 1) / kThreads, 132 * 8));
}

__global__ void amaxKernel(const bf16* x, int rows, int cols, int stride, unsigned* out) {
  const int perRow = cols / kVec;
  const size_t n = (size_t)rows * perRow;
  float m = 0.f;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t r = i / perRow, c = (i % perRow) * kVec;
    const uint4 raw = *reinterpret_cast<const uint4*>(x + r * stride + c);
    const bf16* e = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
    for (int j = 0; j < kVec; j++) m = fmaxf(m, fabsf(__bfloat162float(e[j])));
  }
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  __shared__ float warpMax[kThreads / 32];
  if ((threadIdx.x & 31) == 0) warpMax[threadIdx.x >> 5] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; w++) m = fmaxf(m, warpMax[w]);
    atomicMax(out, __float_as_uint(m));
  }
}

/** Scales of q (and of k and v unless qOnly, their largest value mapped to 448 / kvHeadroom) from the amaxes. */
__global__ void scalesKernel(float* s, bool qOnly, float kvHeadroom) {
  const unsigned* amax = reinterpret_cast<const unsigned*>(s + at(kAmax));
  for (int i = 0; i < (qOnly ? 1 : 3); i++) {
    const float a = __uint_as_float(amax[i]) * (i ? kvHeadroom : 1.f);
    const bool usable = a > 0.f && isfinite(a);  // all zeros (or not finite): scale 1
    s[at(kScaleQ + i)] = usable ? kE4m3Max / a : 1.f;
    s[at(kDescaleQ + i)] = usable ? a / kE4m3Max : 1.f;
  }
  // softmax probabilities lie in [0, 1]; an output row is a convex mix of value rows, so |o| <= max |v|
  s[at(kScaleS)] = kE4m3Max;
  s[at(kDescaleS)] = 1.f / kE4m3Max;
  s[at(kScaleO)] = s[at(kScaleV)];
  s[at(kDescaleO)] = s[at(kDescaleV)];
}

/** out [rows, cols] E4M3 (contiguous) = saturate(x * scale). */
__global__ void quantizeKernel(const bf16* x, int rows, int cols, int stride, const float* scale, uint8_t* out) {
  const int perRow = cols / kVec;
  const size_t n = (size_t)rows * perRow;
  const float sc = *scale;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t r = i / perRow, c = (i % perRow) * kVec;
    const uint4 raw = *reinterpret_cast<const uint4*>(x + r * stride + c);
    *reinterpret_cast<uint2*>(out + r * cols + c) = scaledE4m3x8(raw, sc);
  }
}

/** o [rows, cols] bf16 with row stride oStride = in (E4M3, contiguous) * descale. */
__global__ void dequantizeKernel(const uint8_t* in, int rows, int cols, const float* descale, bf16* o, int oStride) {
  const int perRow = cols / kVec;
  const size_t n = (size_t)rows * perRow;
  const float ds = *descale;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t r = i / perRow, c = (i % perRow) * kVec;
    const uint2 raw = *reinterpret_cast<const uint2*>(in + r * cols + c);
    const unsigned short* pairs = reinterpret_cast<const unsigned short*>(&raw);
    __nv_bfloat162 outPairs[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const __half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(pairs[j], __NV_E4M3));
      float2 f = __half22float2(h);
      outPairs[j] = __floats2bfloat162_rn(f.x * ds, f.y * ds);
    }
    *reinterpret_cast<uint4*>(o + r * oStride + c) = *reinterpret_cast<const uint4*>(outPairs);
  }
}

bool rowsVectorisable(const void* p, int cols, int stride) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && cols % kVec == 0 && stride % kVec == 0;
}

}  // namespace

void Fp8Attention::quantizeRows(const bf16* q, const bf16* k, const bf16* v, int lq, int lk, int d, int qStride,
                                int kvStride, int from, bool scaleKv, float kvHeadroom, float* sc, uint8_t* k8, uint8_t* v8,
                                int pitch, cudaStream_t s) {
  q8_.reserve((size_t)lq * d);
  unsigned* amax = reinterpret_cast<unsigned*>(sc + at(kAmax));
  const size_t qVec = (size_t)lq * d / kVec, kvVec = (size_t)(lk - from) * d / kVec;
  CUDA_CHECK(cudaMemsetAsync(amax, 0, (scaleKv ? 3 : 1) * sizeof(unsigned), s));
  amaxKernel<<<gridFor(qVec), kThreads, 0, s>>>(q, lq, d, qStride, amax);
  if (scaleKv) {
    amaxKernel<<<gridFor(kvVec), kThreads, 0, s>>>(k, lk, d, kvStride, amax + 1);
    amaxKernel<<<gridFor(kvVec), kThreads, 0, s>>>(v, lk, d, kvStride, amax + 2);
  }
  scalesKernel<<<1, 1, 0, s>>>(sc, !scaleKv, kvHeadroom);
  quantizeKernel<<<gridFor(qVec), kThreads, 0, s>>>(q, lq, d, qStride, sc + at(kScaleQ), q8_.as<uint8_t>());
  if (kvVec > 0) {
    quantizeKernel<<<gridFor(kvVec), kThreads, 0, s>>>(k + (size_t)from * kvStride, lk - from, d, kvStride, sc + at(kScaleK),
                                                        k8 + (size_t)from * d);
    if (own_)
      quantizeValuesTransposed(v, kvStride, from, lk, d / 128, sc + at(kScaleV), v8, pitch, s);
    else
      quantizeKernel<<<gridFor(kvVec), kThreads, 0, s>>>(v + (size_t)from * kvStride, lk - from, d, kvStride,
                                                          sc + at(kScaleV), v8 + (size_t)from * d);
  }
  CUDA_LAUNCH_CHECK();
}

void Fp8Attention::quantize(const bf16* q, const bf16* k, const bf16* v, int lq, int lk, int d, int qStride,
                            int kvStride, cudaStream_t s) {
  k8_.reserve((size_t)lk * d);
  v8_.reserve((size_t)(own_ ? pitchFor(lk) : lk) * d);
  scalars_.reserve(at(kSlots) * sizeof(float));
  quantizeRows(q, k, v, lq, lk, d, qStride, kvStride, 0, true, 1.f, scalars_.as<float>(), k8_.as<uint8_t>(),
               v8_.as<uint8_t>(), pitchFor(lk), s);
}

bool Fp8Attention::attend(const void* k8, const void* v8, int pitch, float* sc, bf16* o, int lq, int lk, int heads,
                          int headDim, int oStride, float scale, cudaStream_t s) {
  const int d = heads * headDim;
  if (own_) {
    if (headDim != 128) throw NativeError("the Hopper FP8 attention kernel takes head_dim 128, not " + std::to_string(headDim));
    HopperFp8Operands t;
    t.q = q8_.as<uint8_t>();
    t.k = static_cast<const uint8_t*>(k8);
    t.vt = static_cast<const uint8_t*>(v8);
    t.pitch = pitch;
    t.descaleQ = sc + at(kDescaleQ);
    t.descaleK = sc + at(kDescaleK);
    t.descaleV = sc + at(kDescaleV);
    own_->run(t, o, lq, lk, heads, oStride, scale, s);
    return true;
  }
  int splits = sdpa_->splitsFor(lq, lk, heads, headDim);
  o8_.reserve((size_t)splits * lq * d);
  if (splits > 1) stats_.reserve((size_t)splits * heads * lq * sizeof(float));
  Fp8Operands t{};
  t.q = q8_.ptr; t.k = k8; t.v = v8; t.o = o8_.ptr;
  t.descaleQ = sc + at(kDescaleQ); t.descaleK = sc + at(kDescaleK); t.descaleV = sc + at(kDescaleV);
  t.descaleS = sc + at(kDescaleS); t.scaleS = sc + at(kScaleS); t.scaleO = sc + at(kScaleO);
  t.amaxS = sc + at(kAmaxS); t.amaxO = sc + at(kAmaxO); t.stats = stats_.as<float>();
  if (splits > 1 && !sdpa_->runFp8(t, splits, lq, lk, heads, headDim, d, d, d, scale, s)) splits = 1;  // no plan split: whole
  if (splits == 1 && !sdpa_->runFp8(t, 1, lq, lk, heads, headDim, d, d, d, scale, s)) return false;
  if (splits > 1) {
    mergeKeySplitsFp8(o8_.as<uint8_t>(), stats_.as<float>(), splits, lq, heads, headDim, sc + at(kDescaleO), o, oStride, s);
    return true;
  }
  dequantizeKernel<<<gridFor((size_t)lq * d / kVec), kThreads, 0, s>>>(o8_.as<uint8_t>(), lq, d, sc + at(kDescaleO), o, oStride);
  CUDA_LAUNCH_CHECK();
  return true;
}

bool Fp8Attention::attendAndDequantize(bf16* o, int lq, int lk, int heads, int headDim, int oStride, float scale,
                                       cudaStream_t s) {
  return attend(k8_.ptr, v8_.ptr, pitchFor(lk), scalars_.as<float>(), o, lq, lk, heads, headDim, oStride, scale, s);
}

void Fp8Attention::beginForward(uint64_t cacheVersion, int cacheRows, int rows, int layers, int d) {
  const char* keep = std::getenv("SSN_FP8_KEEP_CACHE");  // "0": quantise every row at every call (measurements, tests)
  requantise_ = cacheVersion != version_ || cacheRows != cacheRows_ || (size_t)rows > layerRows_ ||
                (int)layerK8_.size() != layers || (keep && !std::strcmp(keep, "0"));
  if (!requantise_) return;
  if ((size_t)rows > layerRows_ || (int)layerK8_.size() != layers) {
    layerRows_ = std::max((size_t)rows, layerRows_ + layerRows_ / 2);
    layerK8_ = std::vector<DeviceBuffer>(layers);
    layerV8_ = std::vector<DeviceBuffer>(layers);
    for (int l = 0; l < layers; l++) {
      layerK8_[l].reserve(layerRows_ * d);
      layerV8_[l].reserve((own_ ? pitchFor(layerRows_) : layerRows_) * d);  // the own kernel's: transposed
    }
  }
  scalars_.reserve((size_t)(layers + 1) * at(kSlots) * sizeof(float));
  version_ = cacheVersion;
  cacheRows_ = cacheRows;
}

bool Fp8Attention::runLayer(int layer, const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int cacheRows,
                            int heads, int headDim, int qStride, int kvStride, int oStride, float scale, cudaStream_t s) {
  const int d = heads * headDim;
  if (lq == 0 || lk == 0 || d % 16 || layer < 0 || layer >= (int)layerK8_.size() || (size_t)lk > layerRows_) return false;
  if (!rowsVectorisable(q, d, qStride) || !rowsVectorisable(k, d, kvStride) || !rowsVectorisable(v, d, kvStride) ||
      !rowsVectorisable(o, d, oStride))
    return false;
  float* sc = scalars_.as<float>() + (size_t)(layer + 1) * at(kSlots);  // slot block 0 is run()'s
  uint8_t* k8 = layerK8_[layer].as<uint8_t>();
  uint8_t* v8 = layerV8_[layer].as<uint8_t>();
  // the rows quantised now: all of them when the cache changed, else the block's after the kept cache rows
  const int pitch = pitchFor(layerRows_);
  quantizeRows(q, k, v, lq, lk, d, qStride, kvStride, requantise_ ? 0 : cacheRows, requantise_, kKvHeadroom, sc, k8, v8,
               pitch, s);
  return attend(k8, v8, pitch, sc, o, lq, lk, heads, headDim, oStride, scale, s);
}

bool Fp8Attention::run(const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int heads, int headDim,
                       int qStride, int kvStride, int oStride, float scale, cudaStream_t s) {
  const int d = heads * headDim;
  if (lq == 0 || lk == 0 || d % 16) return false;
  if (!rowsVectorisable(q, d, qStride) || !rowsVectorisable(k, d, kvStride) || !rowsVectorisable(v, d, kvStride) ||
      !rowsVectorisable(o, d, oStride))
    return false;
  quantize(q, k, v, lq, lk, d, qStride, kvStride, s);
  return attendAndDequantize(o, lq, lk, heads, headDim, oStride, scale, s);
}

void Fp8Attention::setOwnKernel(int device) {
  if (device >= 0 && !own_) own_ = std::make_unique<HopperFp8Attention>(device);
  if (device < 0) own_.reset();
  // the values' layout changes with the kernel: every buffer is made again, every row quantised
  layerK8_.clear();
  layerV8_.clear();
  layerRows_ = 0;
  invalidate();
}

void Fp8Attention::addresses(std::vector<uintptr_t>& out) const {
  for (const DeviceBuffer* b : {&q8_, &k8_, &v8_, &o8_, &stats_, &scalars_}) out.push_back(reinterpret_cast<uintptr_t>(b->ptr));
  for (size_t l = 0; l < layerK8_.size(); l++) {
    out.push_back(reinterpret_cast<uintptr_t>(layerK8_[l].ptr));
    out.push_back(reinterpret_cast<uintptr_t>(layerV8_[l].ptr));
  }
  out.push_back(requantise_ ? 1 : 0);
  if (own_) own_->addresses(out);
}

}  // namespace ssn
