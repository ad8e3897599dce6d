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

/** E4M3 of v (saturating to ±kE4m3Max), as its byte. */
__device__ __forceinline__ uint8_t toE4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

/** The factor a row is multiplied by before E4M3 (its largest magnitude to kE4m3Max; 1 for a row of zeros). */
__device__ __forceinline__ float e4m3RowScale(float amax) { return amax > 0.f ? kE4m3Max / amax : 1.f; }

__device__ __forceinline__ float modValue(const ModVec& m, int frame, int i) {
  float v = m.table[i];
  if (m.emb) v += m.emb[(size_t)frame * m.embStride + i];
  return v;
}

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

// PER > 0: each thread keeps its PER elements of the row in registers (d <= PER * kRowThreads), so x is read once;
// PER == 0: any width, x re-read from memory by each pass. Same arithmetic in the same order either way.
template <typename T, int PER>
__global__ void residualNormKernel(ResidualNormParams<T> p) {
  __shared__ float red[32];
  const int row = blockIdx.x;
  const int frame = row / p.tokensPerFrame;
  float* x = p.x + (size_t)row * p.d;
  const float* dl = p.delta ? p.delta + (size_t)row * p.d : nullptr;
  constexpr int kRegs = PER > 0 ? PER : 1;
  float kept[kRegs];
  const int per = PER > 0 ? PER : (p.d + kRowThreads - 1) / kRowThreads;
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < per; k++) {  // per == PER, a constant, when PER > 0
    const int i = threadIdx.x + k * kRowThreads;
    if (i >= p.d) break;
    float v = x[i];
    if (dl) {
      float u = dl[i];
      if (p.deltaBias) u += p.deltaBias[i];
      if (p.gate.table) u *= modValue(p.gate, frame, i);
      v = p.init ? u : v + u;
      x[i] = v;
    }
    if (PER > 0) kept[k] = v;
    sum += v;
  }
  if (!p.y && !p.y8) return;
  const auto value = [&](int k, int i) { return PER > 0 ? kept[k] : x[i]; };
  const float mean = blockSum(sum, red) / p.d;
  float sq = 0.f;
#pragma unroll
  for (int k = 0; k < per; k++) {  // per == PER, a constant, when PER > 0
    const int i = threadIdx.x + k * kRowThreads;
    if (i >= p.d) break;
    const float c = value(k, i) - mean;
    sq += c * c;
  }
  const float rstd = rsqrtf(blockSum(sq, red) / p.d + p.eps);
  const auto normalised = [&](int k, int i) {
    float n = (value(k, i) - mean) * rstd;
    float sc = p.scale.table ? modValue(p.scale, frame, i) : 0.f;
    float mul = p.onePlus ? 1.f + sc : (p.scale.table ? sc : 1.f);
    float sh = p.shift.table ? modValue(p.shift, frame, i) : 0.f;
    return n * mul + sh;
  };
  if (!p.y8) {
    T* y = p.y + (size_t)row * p.d;
#pragma unroll
    for (int k = 0; k < per; k++) {  // per == PER, a constant, when PER > 0
      const int i = threadIdx.x + k * kRowThreads;
      if (i >= p.d) break;
      y[i] = fromF<T>(normalised(k, i));
    }
    return;
  }
  // E4M3 output: the row's largest magnitude first (PER > 0 keeps the outputs in registers; PER == 0 computes them
  // twice), then the row scaled to it
  float amax = 0.f;
#pragma unroll
  for (int k = 0; k < per; k++) {
    const int i = threadIdx.x + k * kRowThreads;
    if (i >= p.d) break;
    const float v = normalised(k, i);
    if (PER > 0) kept[k] = v;
    amax = fmaxf(amax, fabsf(v));
  }
  amax = blockMax(amax, red);
  const float q = e4m3RowScale(amax);
  uint8_t* y8 = p.y8 + (size_t)row * p.d;
#pragma unroll
  for (int k = 0; k < per; k++) {
    const int i = threadIdx.x + k * kRowThreads;
    if (i >= p.d) break;
    y8[i] = toE4m3((PER > 0 ? kept[k] : normalised(k, i)) * q);
  }
  if (threadIdx.x == 0) p.y8Scale[row] = 1.f / q;
}

template <typename T>
__global__ void qkvNormRopeKernel(QkvParams<T> p) {
  __shared__ float red[32];
  const int row = blockIdx.x;
  const int d = p.d;
  const T* src = p.qkv + (size_t)row * 3 * d;
  float sq = 0.f, sk = 0.f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    const float q = toF(src[i]) + p.bias[i];
    const float k = toF(src[d + i]) + p.bias[d + i];
    sq += q * q;
    sk += k * k;
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
  const int half = p.headDim / 2;
  const size_t o = (size_t)row * d;
  for (int i2 = threadIdx.x; i2 < d / 2; i2 += blockDim.x) {
    const int i = 2 * i2;
    const int j = i2 % half;
    const float2 cs = ropeCS(p.rope, pairPos(p.rope, j, pf, pr, pc), j);
    // query: RMSNorm, weight, RoPE
    float q0 = (toF(src[i]) + p.bias[i]) * rq * p.normQ[i];
    float q1 = (toF(src[i + 1]) + p.bias[i + 1]) * rq * p.normQ[i + 1];
    p.qRot[o + i] = fromF<T>(q0 * cs.x - q1 * cs.y);
    p.qRot[o + i + 1] = fromF<T>(q0 * cs.y + q1 * cs.x);
    // key: stored un-rotated (bf16), rotated from the stored value so re-rotation later is identical
    const T k0b = fromF<T>((toF(src[d + i]) + p.bias[d + i]) * rk * p.normK[i]);
    const T k1b = fromF<T>((toF(src[d + i + 1]) + p.bias[d + i + 1]) * rk * p.normK[i + 1]);
    p.kRaw[o + i] = k0b;
    p.kRaw[o + i + 1] = k1b;
    const float k0 = toF(k0b), k1 = toF(k1b);
    p.kRot[o + i] = fromF<T>(k0 * cs.x - k1 * cs.y);
    p.kRot[o + i + 1] = fromF<T>(k0 * cs.y + k1 * cs.x);
    p.v[o + i] = fromF<T>(toF(src[2 * d + i]) + p.bias[2 * d + i]);
    p.v[o + i + 1] = fromF<T>(toF(src[2 * d + i + 1]) + p.bias[2 * d + i + 1]);
  }
}

template <typename T>
__global__ void rmsNormRowsKernel(const T* in, const float* bias, const float* weight, T* out, int d, float eps) {
  __shared__ float red[32];
  const size_t o = (size_t)blockIdx.x * d;
  float s = 0.f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    float v = toF(in[o + i]) + (bias ? bias[i] : 0.f);
    s += v * v;
  }
  const float r = rsqrtf(blockSum(s, red) / d + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    float v = toF(in[o + i]) + (bias ? bias[i] : 0.f);
    out[o + i] = fromF<T>(v * r * weight[i]);
  }
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
    const float a = toF(kb0), b = toF(kb1);
    kRotDst[o + i] = fromF<T>(a * cs.x - b * cs.y);
    kRotDst[o + i + 1] = fromF<T>(a * cs.y + b * cs.x);
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

/** One block per row: its largest magnitude, then the row scaled (8 elements a thread a step; the second pass reads
    the row from L2). */
__global__ void quantizeRowsE4m3Kernel(const bf16* in, int cols, uint8_t* out, float* scaleOut) {
  __shared__ float red[32];
  const size_t row = blockIdx.x;
  const uint4* src = reinterpret_cast<const uint4*>(in + row * cols);
  const int groups = cols / 8;
  float amax = 0.f;
  for (int g = threadIdx.x; g < groups; g += blockDim.x) {
    const uint4 raw = src[g];
    const bf16* v = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
    for (int j = 0; j < 8; j++) amax = fmaxf(amax, fabsf(__bfloat162float(v[j])));
  }
  amax = blockMax(amax, red);
  const float q = e4m3RowScale(amax);
  uint2* dst = reinterpret_cast<uint2*>(out + row * cols);
  for (int g = threadIdx.x; g < groups; g += blockDim.x) {
    const uint4 raw = src[g];
    const bf16* v = reinterpret_cast<const bf16*>(&raw);
    uint8_t b[8];
#pragma unroll
    for (int j = 0; j < 8; j++) b[j] = toE4m3(__bfloat162float(v[j]) * q);
    dst[g] = *reinterpret_cast<const uint2*>(b);
  }
  if (threadIdx.x == 0) scaleOut[row] = 1.f / q;
}

int gridFor(size_t n, int threads) {
  size_t b = (n + threads - 1) / threads;
  return static_cast<int>(b > 65535 * 16 ? 65535 * 16 : (b == 0 ? 1 : b));
}

}  // namespace

template <typename T>
void residualNorm(const ResidualNormParams<T>& p, cudaStream_t s) {
  switch ((p.d + kRowThreads - 1) / kRowThreads) {
    case 1: residualNormKernel<T, 1><<<p.rows, kRowThreads, 0, s>>>(p); break;
    case 2: residualNormKernel<T, 2><<<p.rows, kRowThreads, 0, s>>>(p); break;
    case 3: residualNormKernel<T, 3><<<p.rows, kRowThreads, 0, s>>>(p); break;
    case 4: residualNormKernel<T, 4><<<p.rows, kRowThreads, 0, s>>>(p); break;
    case 5: residualNormKernel<T, 5><<<p.rows, kRowThreads, 0, s>>>(p); break;
    case 6: residualNormKernel<T, 6><<<p.rows, kRowThreads, 0, s>>>(p); break;  // Wan 1.3B: d = 1536
    case 7: residualNormKernel<T, 7><<<p.rows, kRowThreads, 0, s>>>(p); break;
    case 8: residualNormKernel<T, 8><<<p.rows, kRowThreads, 0, s>>>(p); break;
    default: residualNormKernel<T, 0><<<p.rows, kRowThreads, 0, s>>>(p); break;
  }
  CUDA_LAUNCH_CHECK();
}

void quantizeRowsE4m3(const bf16* in, int rows, int cols, uint8_t* out, float* scaleOut, cudaStream_t s) {
  if (rows == 0) return;
  if (cols % 8) throw NativeError("quantizeRowsE4m3: cols must be a multiple of 8, got " + std::to_string(cols));
  quantizeRowsE4m3Kernel<<<rows, kRowThreads, 0, s>>>(in, cols, out, scaleOut);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void qkvNormRope(const QkvParams<T>& p, cudaStream_t s) {
  qkvNormRopeKernel<<<p.rows, kRowThreads, 0, s>>>(p);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void rmsNormRows(const T* in, const float* bias, const float* weight, T* out, int rows, int d, float eps,
                 cudaStream_t s) {
  rmsNormRowsKernel<<<rows, kRowThreads, 0, s>>>(in, bias, weight, out, d, eps);
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
