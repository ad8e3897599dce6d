// The engine's own fused kernels (everything but the matrix products and attention).
#pragma once
#include "common.h"
#ifdef __CUDACC__
#include <cuda_fp8.h>
#endif

namespace ssn {

#ifdef __CUDACC__
__device__ __forceinline__ float toF(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toF(float v) { return v; }
template <typename T> __device__ __forceinline__ T fromF(float v);
template <> __device__ __forceinline__ bf16 fromF<bf16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ float fromF<float>(float v) { return v; }

// Vector moves of 4 or 8 consecutive elements as floats (16-byte aligned rows: the engine's widths are multiples of
// 8): fp32 and bf16 both ways, E4M3 (8 bytes, unscaled) in.
__device__ __forceinline__ void load4(const float* p, float v[4]) {
  const float4 f = *reinterpret_cast<const float4*>(p);
  v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
}
__device__ __forceinline__ void store4(float* p, const float v[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store4(bf16* p, const float v[4]) {
  __nv_bfloat162 h[2] = {__floats2bfloat162_rn(v[0], v[1]), __floats2bfloat162_rn(v[2], v[3])};
  *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(h);
}
template <typename T>
__device__ __forceinline__ void load8(const T* p, float v[8]) { load4(p, v); load4(p + 4, v + 4); }
template <>
__device__ __forceinline__ void load8<bf16>(const bf16* p, float v[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const float2 f = __bfloat1622float2(h[j]);
    v[2 * j] = f.x;
    v[2 * j + 1] = f.y;
  }
}
template <>
__device__ __forceinline__ void load8<uint8_t>(const uint8_t* p, float v[8]) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const unsigned short* pairs = reinterpret_cast<const unsigned short*>(&raw);
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pairs[j], __NV_E4M3)));
    v[2 * j] = f.x;
    v[2 * j + 1] = f.y;
  }
}
template <typename T>
__device__ __forceinline__ void store8(T* p, const float v[8]) { store4(p, v); store4(p + 4, v + 4); }
template <>
__device__ __forceinline__ void store8<bf16>(bf16* p, const float v[8]) {
  __nv_bfloat162 h[4];
#pragma unroll
  for (int j = 0; j < 4; j++) h[j] = __floats2bfloat162_rn(v[2 * j], v[2 * j + 1]);
  *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(h);
}

/** 8 bf16 values (16 bytes) times `scale`, as 8 E4M3 bytes in order (saturating to ±kE4m3Max). */
__device__ __forceinline__ uint2 scaledE4m3x8(const uint4& raw, float scale) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
  unsigned short packed[4];
#pragma unroll
  for (int j = 0; j < 4; j++) {
    float2 f = __bfloat1622float2(h[j]);
    f.x *= scale;
    f.y *= scale;
    packed[j] = __nv_cvt_float2_to_fp8x2(f, __NV_SATFINITE, __NV_E4M3);
  }
  return *reinterpret_cast<const uint2*>(packed);
}
#endif

/** RoPE of a head split in (frame, row, column) parts; pairs are adjacent elements (2j, 2j+1). */
struct RopeParams {
  const float2* table;  // [tableLen][half] (cos, sin) for integer positions 0..tableLen-1
  const double* freq;   // [half] w_j of each pair (its part's frequency)
  int tableLen;
  int half;             // headDim / 2
  int split0;           // pairs of the frame part
  int split01;          // pairs of the frame and row parts
};

/** value(frame, i) = table[i] + emb[frame * embStride + i]; table == nullptr means absent. */
struct ModVec {
  const float* table = nullptr;
  const float* emb = nullptr;
  int embStride = 0;
};

template <typename T>
struct ResidualNormParams {
  float* x;                  // [rows, d] residual stream (fp32)
  const float* delta;        // [rows, d] sub-layer output, or nullptr (only re-normalise)
  const float* deltaBias;    // [d] or nullptr
  ModVec gate;               // x += (delta + bias) * gate ; absent gate = 1
  bool init;                 // x = (delta + bias) instead of x += ...
  T* y;                      // [rows, d] normalised output, or nullptr
  uint8_t* y8 = nullptr;     // instead of y: [rows, d] E4M3, each row scaled by kE4m3Max / its largest magnitude,
  float* y8Scale = nullptr;  //   and [rows] the factor back (largest / kE4m3Max) for the product that reads it
  ModVec shift, scale;       // y = LN(x) * (onePlus ? 1 + scale : scale) + shift
  bool onePlus;
  float eps;
  int rows, d, tokensPerFrame;
};
template <typename T>
void residualNorm(const ResidualNormParams<T>& p, cudaStream_t s);

template <typename T>
struct QkvParams {
  const T* qkv;  // [rows, 3d]: q | k | v (before bias)
  const float* bias;  // [3d]
  const float* normQ;
  const float* normK;
  float eps;
  int rows, d, headDim, tokensPerFrame, gridW;
  const int* framePos;  // [frames] on the device
  RopeParams rope;
  T* qRot;   // [rows, d]
  T* kRaw;   // [rows, d] (cache rows; after RMSNorm, before RoPE)
  T* kRot;   // [rows, d]
  T* v;      // [rows, d]
  float* posOut;  // [rows, 3] positions of the rows, or nullptr
};
template <typename T>
void qkvNormRope(const QkvParams<T>& p, cudaStream_t s);

/** out = RMSNorm(in + bias) * weight (rows of d), bf16 in and out. */
template <typename T>
void rmsNormRows(const T* in, const float* bias, const float* weight, T* out, int rows, int d, float eps,
                 cudaStream_t s);
/** In place: h = act(h + bias); act 0 = identity, 1 = GELU (tanh approximation). */
template <typename T>
void biasAct(T* h, const float* bias, int rows, int n, int act, cudaStream_t s);

/** out [rows, cols] E4M3 = in's rows each scaled by kE4m3Max / its largest magnitude; scaleOut [rows] = the factor
    back. cols a multiple of 8. (An FP8 product's operand: the FFN's hidden rows, a weight's output features.) */
void quantizeRowsE4m3(const bf16* in, int rows, int cols, uint8_t* out, float* scaleOut, cudaStream_t s);

/** Conversions between fp32 and the storage type (a plain copy when T is float). */
template <typename T>
void fromF32(const float* in, T* out, size_t n, cudaStream_t s);
template <typename T>
void toF32(const T* in, float* out, size_t n, cudaStream_t s);

/** latent [C, F, H, W] -> patches [L, C*pt*ph*pw] (feature order c, kt, kh, kw as Conv3d). */
template <typename T>
void patchify(const float* latent, T* patches, int C, int F, int H, int W, int pt, int ph, int pw, cudaStream_t s);
/** head [L, pt*ph*pw*C] + bias (Wan order: kt, kh, kw, c) -> flow [C, F, H, W]. */
void unpatchify(const float* head, const float* bias, float* flow, int C, int F, int H, int W, int pt, int ph, int pw,
                cudaStream_t s);

/** emb [rows, freqDim] = concat(cos(t w_i), sin(t w_i)), w_i = 10000^(-i/half), computed in float64. */
void sinusoid(const float* t, float* emb, int rows, int freqDim, cudaStream_t s);
/** out [M, N] = act(in) [M, K] . W[N, K]^T + b (fp32; small M). act 0 = none, 1 = SiLU on the input. */
void smallLinear(const float* in, const float* W, const float* b, float* out, int M, int N, int K, int act,
                 cudaStream_t s);

/**
 * Cache rebuild for one layer: new row r = sum_t w[r,t] * src row idx[r,t] (fp32 sum of products in term
 * order, rounded once to the storage type), K and V alike; kRot of the new row = RoPE(new kRaw) at pos[r].
 */
template <typename T>
void cacheBlend(const T* kRawSrc, const T* vSrc, const int* idx, const float* w, int rows, int terms, int d,
                int headDim, const float* pos, RopeParams rope, T* kRawDst, T* vDst, T* kRotDst,
                cudaStream_t s);

/** out[j] (+)= reduce over columns: colSum [d] = sum of rows of q [rows, d] (fp32 accumulate). */
template <typename T>
void columnSum(const T* q, int rows, int d, float* out, cudaStream_t s);
/** scores[j] = dot(qsum, kRot[j]) * scale, one per row. */
template <typename T>
void dotRows(const float* qsum, const T* kRot, int rows, int d, float scale, float* scores, cudaStream_t s);
/** scores[n] = max(scores[n], max_m logits[m, n] * scale) over logits [M, N] (fp32); init: overwrite. */
void maxColumns(const float* logits, int M, int N, float scale, bool init, float* scores, cudaStream_t s);

}  // namespace ssn
