// The engine's own fused kernels. One block per token row for the row-wise normalisations; fp32 math.
#include "kernels.h"
#include <cuda_fp8.h>
#include <cmath>

namespace ssn {
namespace {

constexpr int kRowThreads = 256;

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/** Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result. */
__device__ float blockSum(float v, float* smem32) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();  // smem32 may still be read by an earlier call
  if (lane == 0) smem32[warp] = v;
  __syncthreads();
  float t = lane < warps ? smem32[lane] : 0.f;
  return warpSum(t);
}

__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/** Maximum over the block, as blockSum. */
__device__ float blockMax(float v, float* smem32) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpMax(v);
  __syncthreads();
  if (lane == 0) smem32[warp] = v;
  __syncthreads();
  float t = lane < warps ? smem32[lane] : 0.f;
  return warpMax(t);
}

/** The factor a row is multiplied by before E4M3 (its largest magnitude to kE4m3Max; 1 for a row of zeros). */
__device__ __forceinline__ float e4m3RowScale(float amax) { return amax > 0.f ? kE4m3Max / amax : 1.f; }

__device__ __forceinline__ float2 ropeCS(const RopeParams& rp, float pos, int j) {
  const int ip = static_cast<int>(pos);
  if (static_cast<float>(ip) == pos && ip >= 0 && ip < rp.tableLen) return rp.table[(size_t)ip * rp.half + j];
  double s, c;
  sincos(static_cast<double>(pos) * rp.freq[j], &s, &c);
  return make_float2(static_cast<float>(c), static_cast<float>(s));
}

/** Position of pair j of a head for a token at (frame, row, col). */
__device__ __forceinline__ float pairPos(const RopeParams& rp, int j, float f, float r, float c) {
  return j < rp.split0 ? f : (j < rp.split01 ? r : c);
}

/** v as the storage type holds it (the value a later read of the stored element gives). */
template <typename T>
__device__ __forceinline__ float rounded(float v) { return toF(fromF<T>(v)); }

/** Elements i..i+3 of a modulation vector for a token of `frame`. */
__device__ __forceinline__ void modValue4(const ModVec& m, int frame, int i, float v[4]) {
  load4(m.table + i, v);
  if (!m.emb) return;
  float e[4];
  load4(m.emb + (size_t)frame * m.embStride + i, e);
#pragma unroll
  for (int j = 0; j < 4; j++) v[j] += e[j];
}

/** (a, b) turned by the angle whose (cos, sin) is cs: one expression for every kernel that rotates keys, so a key
    rotated when written and re-rotated after a cache rebuild rounds the same way. */
__device__ __forceinline__ float2 rotatePair(float a, float b, float2 cs) {
  return make_float2(a * cs.x - b * cs.y, a * cs.y + b * cs.x);
}

// One block of kResidualThreads per row; each thread keeps PER groups of 4 consecutive elements of the row in
// registers (d <= PER * 4 * kResidualThreads), so x and delta are read once, with 16-byte loads.
constexpr int kResidualThreads = 128;
template <typename T, int PER>
__global__ void __launch_bounds__(kResidualThreads) residualNormKernel(ResidualNormParams<T> p) {
  __shared__ float red[32];
  const int row = blockIdx.x;
  const int frame = row / p.tokensPerFrame;
  float* x = p.x + (size_t)row * p.d;
  const float* dl = p.delta ? p.delta + (size_t)row * p.d : nullptr;
  float kept[PER][4];
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < PER; k++) {
    const int i = (threadIdx.x + k * kResidualThreads) * 4;
    if (i >= p.d) break;
    load4(x + i, kept[k]);
    if (dl) {
      float u[4];
      load4(dl + i, u);
      if (p.deltaBias) {
        float b[4];
        load4(p.deltaBias + i, b);
#pragma unroll
        for (int j = 0; j < 4; j++) u[j] += b[j];
      }
      if (p.gate.table) {
        float g[4];
        modValue4(p.gate, frame, i, g);
#pragma unroll
        for (int j = 0; j < 4; j++) u[j] *= g[j];
      }
#pragma unroll
      for (int j = 0; j < 4; j++) kept[k][j] = p.init ? u[j] : kept[k][j] + u[j];
      store4(x + i, kept[k]);
    }
#pragma unroll
    for (int j = 0; j < 4; j++) sum += kept[k][j];
  }
  if (!p.y && !p.y8) return;
  const float mean = blockSum(sum, red) / p.d;
  float sq = 0.f;
#pragma unroll
  for (int k = 0; k < PER; k++) {
    if ((threadIdx.x + k * kResidualThreads) * 4 >= p.d) break;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const float c = kept[k][j] - mean;
      sq += c * c;
    }
  }
  const float rstd = rsqrtf(blockSum(sq, red) / p.d + p.eps);
  float amax = 0.f;
#pragma unroll
  for (int k = 0; k < PER; k++) {  // kept becomes the normalised, modulated row
    const int i = (threadIdx.x + k * kResidualThreads) * 4;
    if (i >= p.d) break;
    float sc[4] = {0.f, 0.f, 0.f, 0.f}, sh[4] = {0.f, 0.f, 0.f, 0.f};
    if (p.scale.table) modValue4(p.scale, frame, i, sc);
    if (p.shift.table) modValue4(p.shift, frame, i, sh);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const float mul = p.onePlus ? 1.f + sc[j] : (p.scale.table ? sc[j] : 1.f);
      kept[k][j] = (kept[k][j] - mean) * rstd * mul + sh[j];
      amax = fmaxf(amax, fabsf(kept[k][j]));
    }
    if (!p.y8) store4(p.y + (size_t)row * p.d + i, kept[k]);
  }
  if (!p.y8) return;
  // E4M3 output: each row scaled so its largest magnitude maps to kE4m3Max
  const float q = e4m3RowScale(blockMax(amax, red));
  uint8_t* y8 = p.y8 + (size_t)row * p.d;
#pragma unroll
  for (int k = 0; k < PER; k++) {
    const int i = (threadIdx.x + k * kResidualThreads) * 4;
    if (i >= p.d) break;
    const unsigned short lo = __nv_cvt_float2_to_fp8x2(make_float2(kept[k][0] * q, kept[k][1] * q), __NV_SATFINITE, __NV_E4M3);
    const unsigned short hi = __nv_cvt_float2_to_fp8x2(make_float2(kept[k][2] * q, kept[k][3] * q), __NV_SATFINITE, __NV_E4M3);
    *reinterpret_cast<uint32_t*>(y8 + i) = lo | (static_cast<uint32_t>(hi) << 16);
  }
  if (threadIdx.x == 0) p.y8Scale[row] = 1.f / q;
}

/** Threads of a one-row block that moves 8 elements a thread: d / 8 rounded up to whole warps. */
int rowThreads8(int d) { return ceilDiv(ceilDiv(d, 8), 32) * 32; }

// One block per row, 8 consecutive elements a thread (rowThreads8), held in registers between the norm's two steps.
template <typename T>
__global__ void qkvNormRopeKernel(QkvParams<T> p) {
  __shared__ float red[32];
  const int row = blockIdx.x;
  const int d = p.d;
  const int i = threadIdx.x * 8;
  const bool active = i < d;
  const T* src = p.qkv + (size_t)row * 3 * d;
  float q[8], k[8], v[8];
  float sq = 0.f, sk = 0.f;
  if (active) {
    float b[8];
    load8(src + i, q);
    load8(p.bias + i, b);
#pragma unroll
    for (int j = 0; j < 8; j++) { q[j] += b[j]; sq += q[j] * q[j]; }
    load8(src + d + i, k);
    load8(p.bias + d + i, b);
#pragma unroll
    for (int j = 0; j < 8; j++) { k[j] += b[j]; sk += k[j] * k[j]; }
    load8(src + 2 * d + i, v);
    load8(p.bias + 2 * d + i, b);
#pragma unroll
    for (int j = 0; j < 8; j++) v[j] += b[j];
  }
  const float rq = rsqrtf(blockSum(sq, red) / d + p.eps);
  const float rk = rsqrtf(blockSum(sk, red) / d + p.eps);

  const int frame = row / p.tokensPerFrame;
  const int within = row - frame * p.tokensPerFrame;
  const float pf = static_cast<float>(p.framePos[frame]);
  const float pr = static_cast<float>(within / p.gridW);
  const float pc = static_cast<float>(within % p.gridW);
  if (p.posOut && threadIdx.x == 0) {
    p.posOut[(size_t)row * 3 + 0] = pf;
    p.posOut[(size_t)row * 3 + 1] = pr;
    p.posOut[(size_t)row * 3 + 2] = pc;
  }
  if (!active) return;
  float nq[8], nk[8], qo[8], ko[8];
  load8(p.normQ + i, nq);
  load8(p.normK + i, nk);
  const int half = p.headDim / 2;
#pragma unroll
  for (int m = 0; m < 4; m++) {  // pairs (i + 2m, i + 2m + 1); a head's width is even, so a pair never spans two
    const int j = (i / 2 + m) % half;
    const float2 cs = ropeCS(p.rope, pairPos(p.rope, j, pf, pr, pc), j);
    const float2 qr = rotatePair(q[2 * m] * rq * nq[2 * m], q[2 * m + 1] * rq * nq[2 * m + 1], cs);
    qo[2 * m] = qr.x;
    qo[2 * m + 1] = qr.y;
    // key: stored un-rotated, rotated from the stored value so re-rotation later is identical
    k[2 * m] = rounded<T>(k[2 * m] * rk * nk[2 * m]);
    k[2 * m + 1] = rounded<T>(k[2 * m + 1] * rk * nk[2 * m + 1]);
    const float2 kr = rotatePair(k[2 * m], k[2 * m + 1], cs);
    ko[2 * m] = kr.x;
    ko[2 * m + 1] = kr.y;
  }
  const size_t o = (size_t)row * d + i;
  store8(p.qRot + o, qo);
  store8(p.kRaw + o, k);
  store8(p.kRot + o, ko);
  store8(p.v + o, v);
}

// One block per row (rowThreads8), the row in registers: in may be out.
template <typename T>
__global__ void rmsNormRowsKernel(const T* in, const float* bias, const float* weight, T* out, int d, float eps) {
  __shared__ float red[32];
  const int i = threadIdx.x * 8;
  const bool active = i < d;
  const size_t o = (size_t)blockIdx.x * d + i;
  float v[8];
  float s = 0.f;
  if (active) {
    load8(in + o, v);
    float b[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (bias) load8(bias + i, b);
#pragma unroll
    for (int j = 0; j < 8; j++) { v[j] += b[j]; s += v[j] * v[j]; }
  }
  const float r = rsqrtf(blockSum(s, red) / d + eps);
  if (!active) return;
  float w[8];
  load8(weight + i, w);
#pragma unroll
  for (int j = 0; j < 8; j++) v[j] = v[j] * r * w[j];
  store8(out + o, v);
}

__device__ __forceinline__ float geluTanh(float x) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  return 0.5f * x * (1.f + tanhf(k0 * (x + k1 * x * x * x)));
}

template <typename T>
__global__ void biasActKernel(T* h, const float* bias, size_t total, int n, int act) {
  // 8 elements per thread (16 bytes in bf16); n is a multiple of 8
  struct alignas(16) Pack { T e[8]; };
  const size_t v = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (v * 8 >= total) return;
  Pack pack = reinterpret_cast<Pack*>(h)[v];
  T* e = pack.e;
  const int col = static_cast<int>((v * 8) % n);
#pragma unroll
  for (int k = 0; k < 8; k++) {
    float x = toF(e[k]) + (bias ? bias[col + k] : 0.f);
    if (act == 1) x = geluTanh(x);
    e[k] = fromF<T>(x);
  }
  reinterpret_cast<Pack*>(h)[v] = pack;
}

template <typename T>
__global__ void fromF32Kernel(const float* in, T* out, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = fromF<T>(in[i]);
}
template <typename T>
__global__ void toF32Kernel(const T* in, float* out, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = toF(in[i]);
}

template <typename T>
__global__ void patchifyKernel(const float* latent, T* patches, int C, int F, int H, int W, int pt, int ph, int pw) {
  const int gh = H / ph, gw = W / pw;
  const int feat = C * pt * ph * pw;
  const size_t total = (size_t)(F / pt) * gh * gw * feat;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
    const int fi = static_cast<int>(idx % feat);
    const size_t tok = idx / feat;
    const int kw = fi % pw, kh = (fi / pw) % ph, kt = (fi / (pw * ph)) % pt, c = fi / (pw * ph * pt);
    const int col = static_cast<int>(tok % gw), row = static_cast<int>((tok / gw) % gh), fr = static_cast<int>(tok / ((size_t)gw * gh));
    const int f = fr * pt + kt, y = row * ph + kh, x = col * pw + kw;
    patches[idx] = fromF<T>(latent[(((size_t)c * F + f) * H + y) * W + x]);
  }
}

__global__ void unpatchifyKernel(const float* head, const float* bias, float* flow, int C, int F, int H, int W, int pt,
                                 int ph, int pw) {
  const size_t total = (size_t)C * F * H * W;
  const int gh = H / ph, gw = W / pw;
  const int feat = C * pt * ph * pw;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
    const int x = static_cast<int>(idx % W), y = static_cast<int>((idx / W) % H);
    const int f = static_cast<int>((idx / ((size_t)W * H)) % F), c = static_cast<int>(idx / ((size_t)W * H * F));
    const size_t tok = ((size_t)(f / pt) * gh + y / ph) * gw + x / pw;
    const int fi = (((f % pt) * ph + (y % ph)) * pw + (x % pw)) * C + c;
    flow[idx] = head[tok * feat + fi] + bias[fi];
  }
}

__global__ void sinusoidKernel(const float* t, float* emb, int rows, int freqDim) {
  const int half = freqDim / 2;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= rows * half) return;
  const int r = idx / half, i = idx % half;
  const double w = pow(10000.0, -static_cast<double>(i) / half);
  double s, c;
  sincos(static_cast<double>(t[r]) * w, &s, &c);
  emb[(size_t)r * freqDim + i] = static_cast<float>(c);
  emb[(size_t)r * freqDim + half + i] = static_cast<float>(s);
}

__global__ void smallLinearKernel(const float* in, const float* W, const float* b, float* out, int M, int N, int K, int act) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
  if (warp >= M * N) return;
  const int m = warp / N, n = warp % N;
  float acc = 0.f;
  for (int k = lane; k < K; k += 32) {
    float v = in[(size_t)m * K + k];
    if (act == 1) v = v / (1.f + expf(-v));
    acc += v * W[(size_t)n * K + k];
  }
  acc = warpSum(acc);
  if (lane == 0) out[(size_t)m * N + n] = acc + (b ? b[n] : 0.f);
}

template <typename T>
__global__ void cacheBlendKernel(const T* kRawSrc, const T* vSrc, const int* idx, const float* w, int terms, int d,
                                 int half, const float* pos, RopeParams rope, T* kRawDst, T* vDst, T* kRotDst) {
  const int r = blockIdx.x;
  const int* ri = idx + (size_t)r * terms;
  const float* rw = w + (size_t)r * terms;
  const float pf = pos[(size_t)r * 3], pr = pos[(size_t)r * 3 + 1], pc = pos[(size_t)r * 3 + 2];
  const size_t o = (size_t)r * d;
  for (int i2 = threadIdx.x; i2 < d / 2; i2 += blockDim.x) {
    const int i = 2 * i2;
    float k0 = 0.f, k1 = 0.f, v0 = 0.f, v1 = 0.f;
    for (int t = 0; t < terms; t++) {
      const float wt = rw[t];
      if (wt == 0.f) continue;
      const size_t s = (size_t)ri[t] * d + i;
      // explicit rounding of each product and sum (no FMA) so a host computation can match bit for bit
      k0 = __fadd_rn(k0, __fmul_rn(wt, toF(kRawSrc[s])));
      k1 = __fadd_rn(k1, __fmul_rn(wt, toF(kRawSrc[s + 1])));
      v0 = __fadd_rn(v0, __fmul_rn(wt, toF(vSrc[s])));
      v1 = __fadd_rn(v1, __fmul_rn(wt, toF(vSrc[s + 1])));
    }
    const T kb0 = fromF<T>(k0), kb1 = fromF<T>(k1);
    kRawDst[o + i] = kb0;
    kRawDst[o + i + 1] = kb1;
    vDst[o + i] = fromF<T>(v0);
    vDst[o + i + 1] = fromF<T>(v1);
    const int j = i2 % half;
    const float2 cs = ropeCS(rope, pairPos(rope, j, pf, pr, pc), j);
    const float2 kr = rotatePair(toF(kb0), toF(kb1), cs);
    kRotDst[o + i] = fromF<T>(kr.x);
    kRotDst[o + i + 1] = fromF<T>(kr.y);
  }
}

template <typename T>
__global__ void columnSumKernel(const T* q, int rows, int d, float* out) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= d) return;
  float acc = 0.f;
  for (int r = blockIdx.y; r < rows; r += gridDim.y) acc += toF(q[(size_t)r * d + col]);
  atomicAdd(&out[col], acc);
}

template <typename T>
__global__ void dotRowsKernel(const float* qsum, const T* kRot, int rows, int d, float scale, float* scores) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
  if (warp >= rows) return;
  const T* k = kRot + (size_t)warp * d;
  float acc = 0.f;
  for (int i = lane; i < d; i += 32) acc += qsum[i] * toF(k[i]);
  acc = warpSum(acc);
  if (lane == 0) scores[warp] = acc * scale;
}

__global__ void maxColumnsKernel(const float* logits, int M, int N, float scale, bool init, float* scores) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  float m = -INFINITY;
  for (int i = 0; i < M; i++) m = fmaxf(m, logits[(size_t)i * N + n]);
  m *= scale;
  scores[n] = init ? m : fmaxf(scores[n], m);
}

/** One block of kRowThreads per row, each thread holding PER groups of 8 elements in registers (cols <= PER * 8 *
    kRowThreads): the row's largest magnitude, then the row scaled, from one read. */
template <int PER>
__global__ void __launch_bounds__(kRowThreads) quantizeRowsE4m3Kernel(const bf16* in, int cols, uint8_t* out, float* scaleOut) {
  __shared__ float red[32];
  const size_t row = blockIdx.x;
  const uint4* src = reinterpret_cast<const uint4*>(in + row * cols);
  const int groups = cols / 8;
  uint4 kept[PER];
  float amax = 0.f;
#pragma unroll
  for (int k = 0; k < PER; k++) {
    const int g = threadIdx.x + k * kRowThreads;
    if (g >= groups) break;
    kept[k] = src[g];
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&kept[k]);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const float2 f = __bfloat1622float2(h[j]);
      amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));
    }
  }
  const float q = e4m3RowScale(blockMax(amax, red));
  uint2* dst = reinterpret_cast<uint2*>(out + row * cols);
#pragma unroll
  for (int k = 0; k < PER; k++) {
    const int g = threadIdx.x + k * kRowThreads;
    if (g >= groups) break;
    dst[g] = scaledE4m3x8(kept[k], q);
  }
  if (threadIdx.x == 0) scaleOut[row] = 1.f / q;
}

int gridFor(size_t n, int threads) {
  size_t b = (n + threads - 1) / threads;
  return static_cast<int>(b > 65535 * 16 ? 65535 * 16 : (b == 0 ? 1 : b));
}

/** Rows the vector kernels read and write start 16-byte aligned (the engine's buffers and widths guarantee it). */
void requireAligned16(const void* p, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 16)
    throw NativeError(std::string(what) + ": buffer not 16-byte aligned");
}

}  // namespace

template <typename T>
void residualNorm(const ResidualNormParams<T>& p, cudaStream_t s) {
  if (p.d % 8) throw NativeError("residualNorm: width must be a multiple of 8, got " + std::to_string(p.d));
  for (const void* ptr : {(const void*)p.x, (const void*)p.delta, (const void*)p.deltaBias, (const void*)p.y,
                          (const void*)p.y8, (const void*)p.gate.table, (const void*)p.gate.emb,
                          (const void*)p.shift.table, (const void*)p.shift.emb, (const void*)p.scale.table,
                          (const void*)p.scale.emb})
    requireAligned16(ptr, "residualNorm");
  const int n = kResidualThreads;
  switch (ceilDiv(p.d, 4 * n)) {
#define SSN_RESIDUAL_CASE(PER) \
  case PER: residualNormKernel<T, PER><<<p.rows, n, 0, s>>>(p); break;
    SSN_RESIDUAL_CASE(1) SSN_RESIDUAL_CASE(2) SSN_RESIDUAL_CASE(3) SSN_RESIDUAL_CASE(4)  // Wan 1.3B: d = 1536, 3
    SSN_RESIDUAL_CASE(5) SSN_RESIDUAL_CASE(6) SSN_RESIDUAL_CASE(7) SSN_RESIDUAL_CASE(8)
    SSN_RESIDUAL_CASE(9) SSN_RESIDUAL_CASE(10) SSN_RESIDUAL_CASE(11) SSN_RESIDUAL_CASE(12)  // Wan 14B: 5120, 10
    SSN_RESIDUAL_CASE(13) SSN_RESIDUAL_CASE(14) SSN_RESIDUAL_CASE(15) SSN_RESIDUAL_CASE(16)
#undef SSN_RESIDUAL_CASE
    default: throw NativeError("residualNorm: width at most " + std::to_string(16 * 4 * n) + ", got " + std::to_string(p.d));
  }
  CUDA_LAUNCH_CHECK();
}

void quantizeRowsE4m3(const bf16* in, int rows, int cols, uint8_t* out, float* scaleOut, cudaStream_t s) {
  if (rows == 0) return;
  if (cols % 8) throw NativeError("quantizeRowsE4m3: cols must be a multiple of 8, got " + std::to_string(cols));
  requireAligned16(in, "quantizeRowsE4m3");
  requireAligned16(out, "quantizeRowsE4m3");
  switch (ceilDiv(cols, 8 * kRowThreads)) {
#define SSN_QUANTIZE_CASE(PER) \
  case PER: quantizeRowsE4m3Kernel<PER><<<rows, kRowThreads, 0, s>>>(in, cols, out, scaleOut); break;
    SSN_QUANTIZE_CASE(1) SSN_QUANTIZE_CASE(2) SSN_QUANTIZE_CASE(3) SSN_QUANTIZE_CASE(4)
    SSN_QUANTIZE_CASE(5) SSN_QUANTIZE_CASE(6) SSN_QUANTIZE_CASE(7) SSN_QUANTIZE_CASE(8)  // Wan 1.3B FFN: 8960, 5
#undef SSN_QUANTIZE_CASE
    default: throw NativeError("quantizeRowsE4m3: cols at most " + std::to_string(8 * 8 * kRowThreads) + ", got " + std::to_string(cols));
  }
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void qkvNormRope(const QkvParams<T>& p, cudaStream_t s) {
  if (p.d % 8 || p.headDim % 2 || rowThreads8(p.d) > 1024)
    throw NativeError("qkvNormRope: width a multiple of 8 up to 8192 and an even head width, got " +
                      std::to_string(p.d) + " and " + std::to_string(p.headDim));
  for (const void* ptr : {(const void*)p.qkv, (const void*)p.bias, (const void*)p.normQ, (const void*)p.normK,
                          (const void*)p.qRot, (const void*)p.kRaw, (const void*)p.kRot, (const void*)p.v})
    requireAligned16(ptr, "qkvNormRope");
  qkvNormRopeKernel<<<p.rows, rowThreads8(p.d), 0, s>>>(p);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void rmsNormRows(const T* in, const float* bias, const float* weight, T* out, int rows, int d, float eps,
                 cudaStream_t s) {
  if (d % 8 || rowThreads8(d) > 1024)
    throw NativeError("rmsNormRows: width a multiple of 8 up to 8192, got " + std::to_string(d));
  for (const void* ptr : {(const void*)in, (const void*)bias, (const void*)weight, (const void*)out})
    requireAligned16(ptr, "rmsNormRows");
  rmsNormRowsKernel<<<rows, rowThreads8(d), 0, s>>>(in, bias, weight, out, d, eps);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void biasAct(T* h, const float* bias, int rows, int n, int act, cudaStream_t s) {
  if (n % 8 != 0) throw NativeError("biasAct: width must be a multiple of 8");
  const size_t total = (size_t)rows * n;
  biasActKernel<<<ceilDiv(total / 8, 256), 256, 0, s>>>(h, bias, total, n, act);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void fromF32(const float* in, T* out, size_t n, cudaStream_t s) {
  fromF32Kernel<<<gridFor(n, 256), 256, 0, s>>>(in, out, n);
  CUDA_LAUNCH_CHECK();
}
template <typename T>
void toF32(const T* in, float* out, size_t n, cudaStream_t s) {
  toF32Kernel<<<gridFor(n, 256), 256, 0, s>>>(in, out, n);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void patchify(const float* latent, T* patches, int C, int F, int H, int W, int pt, int ph, int pw, cudaStream_t s) {
  const size_t total = (size_t)C * F * H * W;
  patchifyKernel<<<gridFor(total, 256), 256, 0, s>>>(latent, patches, C, F, H, W, pt, ph, pw);
  CUDA_LAUNCH_CHECK();
}

void unpatchify(const float* head, const float* bias, float* flow, int C, int F, int H, int W, int pt, int ph, int pw,
                cudaStream_t s) {
  const size_t total = (size_t)C * F * H * W;
  unpatchifyKernel<<<gridFor(total, 256), 256, 0, s>>>(head, bias, flow, C, F, H, W, pt, ph, pw);
  CUDA_LAUNCH_CHECK();
}

void sinusoid(const float* t, float* emb, int rows, int freqDim, cudaStream_t s) {
  const int n = rows * (freqDim / 2);
  sinusoidKernel<<<ceilDiv(n, 128), 128, 0, s>>>(t, emb, rows, freqDim);
  CUDA_LAUNCH_CHECK();
}

void smallLinear(const float* in, const float* W, const float* b, float* out, int M, int N, int K, int act,
                 cudaStream_t s) {
  const long long threads = (long long)M * N * 32;
  smallLinearKernel<<<ceilDiv(threads, 256), 256, 0, s>>>(in, W, b, out, M, N, K, act);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void cacheBlend(const T* kRawSrc, const T* vSrc, const int* idx, const float* w, int rows, int terms, int d,
                int headDim, const float* pos, RopeParams rope, T* kRawDst, T* vDst, T* kRotDst,
                cudaStream_t s) {
  if (rows == 0) return;
  cacheBlendKernel<<<rows, kRowThreads, 0, s>>>(kRawSrc, vSrc, idx, w, terms, d, headDim / 2, pos, rope, kRawDst, vDst,
                                                kRotDst);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void columnSum(const T* q, int rows, int d, float* out, cudaStream_t s) {
  dim3 grid(ceilDiv(d, 128), rows < 256 ? (rows > 0 ? rows : 1) : 256);
  columnSumKernel<<<grid, 128, 0, s>>>(q, rows, d, out);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void dotRows(const float* qsum, const T* kRot, int rows, int d, float scale, float* scores, cudaStream_t s) {
  if (rows == 0) return;
  dotRowsKernel<<<ceilDiv((long long)rows * 32, 256), 256, 0, s>>>(qsum, kRot, rows, d, scale, scores);
  CUDA_LAUNCH_CHECK();
}

void maxColumns(const float* logits, int M, int N, float scale, bool init, float* scores, cudaStream_t s) {
  if (N == 0) return;
  maxColumnsKernel<<<ceilDiv(N, 256), 256, 0, s>>>(logits, M, N, scale, init, scores);
  CUDA_LAUNCH_CHECK();
}

#define SSN_INSTANTIATE(T)                                                                                     \
  template void residualNorm<T>(const ResidualNormParams<T>&, cudaStream_t);                                   \
  template void qkvNormRope<T>(const QkvParams<T>&, cudaStream_t);                                             \
  template void rmsNormRows<T>(const T*, const float*, const float*, T*, int, int, float, cudaStream_t);        \
  template void biasAct<T>(T*, const float*, int, int, int, cudaStream_t);                                     \
  template void fromF32<T>(const float*, T*, size_t, cudaStream_t);                                            \
  template void toF32<T>(const T*, float*, size_t, cudaStream_t);                                              \
  template void patchify<T>(const float*, T*, int, int, int, int, int, int, int, cudaStream_t);                \
  template void cacheBlend<T>(const T*, const T*, const int*, const float*, int, int, int, int, const float*,   \
                              RopeParams, T*, T*, T*, cudaStream_t);                                           \
  template void columnSum<T>(const T*, int, int, float*, cudaStream_t);                                        \
  template void dotRows<T>(const float*, const T*, int, int, float, float*, cudaStream_t);
SSN_INSTANTIATE(bf16)
SSN_INSTANTIATE(float)

}  // namespace ssn
