// FlashAttention-2 style forward: 4 warps per 64 query rows, 64-key tiles double-buffered with cp.async,
// bf16 mma.sync m16n8k16 with fp32 accumulation, online softmax in base 2.
#include "attention.h"
#include "cudnn-sdpa.h"
#include "fp8-attention.h"
#include "hopper-attention.h"
#include <cstdlib>

namespace ssn {
namespace {

constexpr int PAD = 8;

__device__ __forceinline__ uint32_t smemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cpAsync16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cpAsyncWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddr(p)));
}
__device__ __forceinline__ void ldmatrixX4Trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smemAddr(p)));
}

__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

/** Loads `rows` rows (of D bf16) of one head into shared memory; rows past `valid` are zero-filled. */
template <int D, int THREADS, int BN>
__device__ __forceinline__ void loadTile(bf16* sm, const bf16* base, int stride, int headOff, int firstKey, int Lk,
                                         int segA, int segBOffset) {
  constexpr int CHUNKS = D / 8;
  for (int c = threadIdx.x; c < BN * CHUNKS; c += THREADS) {
    const int r = c / CHUNKS, cc = c % CHUNKS;
    const int key = firstKey + r;
    const bool ok = key < Lk;
    const int row = key < segA ? key : key - segA + segBOffset;
    const bf16* src = ok ? base + (size_t)row * stride + headOff + cc * 8 : base;
    cpAsync16(sm + r * (D + PAD) + cc * 8, src, ok);
  }
}

/**
 * WARPS warps, each owning MT m-tiles of 16 query rows: a CTA takes BM = 16 * MT * WARPS rows and streams
 * every key tile of its head once. With MT = 2 each K / V fragment read from shared memory feeds two
 * mma's (FA2's layout); the Q fragments are then re-read from shared memory per k-step instead of
 * living in registers.
 */
template <int D, int WARPS, int MT, int BN>
__global__ void __launch_bounds__(WARPS * 32) flashKernel(AttentionParams<bf16> p) {
  constexpr int THREADS = WARPS * 32, BM = WARPS * 16 * MT;
  constexpr bool Q_IN_REGS = MT == 1;
  extern __shared__ __align__(16) unsigned char smemRaw[];
  constexpr int SROW = D + PAD;
  bf16* sQ = reinterpret_cast<bf16*>(smemRaw);
  bf16* sK = sQ + BM * SROW;          // 2 stages
  bf16* sV = sK + 2 * BN * SROW;      // 2 stages

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int qBase = blockIdx.x * BM;
  const int head = blockIdx.y;
  const int headOff = head * D;
  const int Lk = p.segA + p.segB;
  const int tiles = (Lk + BN - 1) / BN;

  for (int c = tid; c < BM * (D / 8); c += THREADS) {
    const int r = c / (D / 8), cc = c % (D / 8);
    const bool ok = qBase + r < p.Lq;
    const bf16* src = ok ? p.q + (size_t)(qBase + r) * p.qStride + headOff + cc * 8 : p.q;
    cpAsync16(sQ + r * SROW + cc * 8, src, ok);
  }
  loadTile<D, THREADS, BN>(sK, p.k, p.kvStride, headOff, 0, Lk, p.segA, p.segBOffset);
  loadTile<D, THREADS, BN>(sV, p.v, p.kvStride, headOff, 0, Lk, p.segA, p.segBOffset);
  cpAsyncCommit();

  uint32_t qf[Q_IN_REGS ? D / 16 : 1][4];
  float acc[MT][D / 8][4];
#pragma unroll
  for (int m = 0; m < MT; m++)
#pragma unroll
    for (int i = 0; i < D / 8; i++) acc[m][i][0] = acc[m][i][1] = acc[m][i][2] = acc[m][i][3] = 0.f;
  float mRow[MT][2], lRow[MT][2];
#pragma unroll
  for (int m = 0; m < MT; m++) mRow[m][0] = mRow[m][1] = -INFINITY, lRow[m][0] = lRow[m][1] = 0.f;
  const float sl = p.scale * 1.4426950408889634f;
  const bf16* myQ = sQ + (warp * 16 * MT + (lane & 15)) * SROW + (lane >> 4) * 8;

  for (int j = 0; j < tiles; j++) {
    const int stage = j & 1;
    if (j + 1 < tiles) {
      loadTile<D, THREADS, BN>(sK + (stage ^ 1) * BN * SROW, p.k, p.kvStride, headOff, (j + 1) * BN, Lk, p.segA, p.segBOffset);
      loadTile<D, THREADS, BN>(sV + (stage ^ 1) * BN * SROW, p.v, p.kvStride, headOff, (j + 1) * BN, Lk, p.segA, p.segBOffset);
      cpAsyncCommit();
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    if (Q_IN_REGS && j == 0) {
#pragma unroll
      for (int kk = 0; kk < (Q_IN_REGS ? D / 16 : 1); kk++) ldmatrixX4(qf[kk], myQ + kk * 16);
    }
    const bf16* k = sK + stage * BN * SROW;
    const bf16* v = sV + stage * BN * SROW;

    float s[MT][BN / 8][4];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int i = 0; i < BN / 8; i++) s[m][i][0] = s[m][i][1] = s[m][i][2] = s[m][i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
      uint32_t qa[MT][4];
      if constexpr (Q_IN_REGS) {
#pragma unroll
        for (int r = 0; r < 4; r++) qa[0][r] = qf[Q_IN_REGS ? kk : 0][r];
      } else {
#pragma unroll
        for (int m = 0; m < MT; m++) ldmatrixX4(qa[m], myQ + m * 16 * SROW + kk * 16);
      }
#pragma unroll
      for (int np = 0; np < BN / 16; np++) {
        uint32_t b[4];
        ldmatrixX4(b, k + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * SROW + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int m = 0; m < MT; m++) {
          mma16816(s[m][2 * np], qa[m], b[0], b[1]);
          mma16816(s[m][2 * np + 1], qa[m], b[2], b[3]);
        }
      }
    }
    if ((j + 1) * BN > Lk) {
#pragma unroll
      for (int nt = 0; nt < BN / 8; nt++) {
        const int key = j * BN + nt * 8 + 2 * t4;
#pragma unroll
        for (int m = 0; m < MT; m++) {
          if (key >= Lk) s[m][nt][0] = s[m][nt][2] = -INFINITY;
          if (key + 1 >= Lk) s[m][nt][1] = s[m][nt][3] = -INFINITY;
        }
      }
    }
    // online softmax: per m-tile this thread holds rows g (elements 0,1) and g + 8 (elements 2,3)
#pragma unroll
    for (int m = 0; m < MT; m++) {
#pragma unroll
      for (int h = 0; h < 2; h++) {
        float mx = mRow[m][h];
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) mx = fmaxf(mx, fmaxf(s[m][nt][2 * h], s[m][nt][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mScaled = mx == -INFINITY ? 0.f : mx * sl;
        const float corr = exp2f(mRow[m][h] * sl - mScaled);
        mRow[m][h] = mx;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) {
          s[m][nt][2 * h] = exp2f(s[m][nt][2 * h] * sl - mScaled);
          s[m][nt][2 * h + 1] = exp2f(s[m][nt][2 * h + 1] * sl - mScaled);
          sum += s[m][nt][2 * h] + s[m][nt][2 * h + 1];
        }
        lRow[m][h] = lRow[m][h] * corr + sum;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++) {
          acc[m][dt][2 * h] *= corr;
          acc[m][dt][2 * h + 1] *= corr;
        }
      }
    }
    // O += P V
#pragma unroll
    for (int ks = 0; ks < BN / 16; ks++) {
      uint32_t a[MT][4];
#pragma unroll
      for (int m = 0; m < MT; m++) {
        a[m][0] = packBf16(s[m][2 * ks][0], s[m][2 * ks][1]);
        a[m][1] = packBf16(s[m][2 * ks][2], s[m][2 * ks][3]);
        a[m][2] = packBf16(s[m][2 * ks + 1][0], s[m][2 * ks + 1][1]);
        a[m][3] = packBf16(s[m][2 * ks + 1][2], s[m][2 * ks + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; dp++) {
        uint32_t b[4];
        ldmatrixX4Trans(b, v + (ks * 16 + (lane & 15)) * SROW + dp * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int m = 0; m < MT; m++) {
          mma16816(acc[m][2 * dp], a[m], b[0], b[1]);
          mma16816(acc[m][2 * dp + 1], a[m], b[2], b[3]);
        }
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int m = 0; m < MT; m++) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float l = lRow[m][h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const int row = qBase + warp * 16 * MT + m * 16 + g + 8 * h;
      if (row < p.Lq) {
        bf16* out = p.o + (size_t)row * p.oStride + headOff;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++) {
          __nv_bfloat162 v2 = __floats2bfloat162_rn(acc[m][dt][2 * h] * inv, acc[m][dt][2 * h + 1] * inv);
          *reinterpret_cast<__nv_bfloat162*>(out + dt * 8 + 2 * t4) = v2;
        }
      }
    }
  }
}

template <int D, int WARPS, int MT, int BN = 64>
void launch(const AttentionParams<bf16>& p, cudaStream_t s) {
  constexpr int BM = WARPS * 16 * MT;
  const int smem = (BM + 4 * BN) * (D + PAD) * static_cast<int>(sizeof(bf16));
  static bool configured[64] = {};  // the attribute is per function and per device
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev >= 64 || !configured[dev]) {
    CUDA_CHECK(cudaFuncSetAttribute(flashKernel<D, WARPS, MT, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    if (dev < 64) configured[dev] = true;
  }
  dim3 grid(ceilDiv(p.Lq, BM), p.heads);
  flashKernel<D, WARPS, MT, BN><<<grid, WARPS * 32, smem, s>>>(p);
  CUDA_LAUNCH_CHECK();
}

/**
 * fp32 attention: one warp per (query row, head). Lanes take one key each for the logits, then one
 * head dimension each (up to 4 per lane) for the weighted sum of values; online softmax per 32 keys.
 */
__global__ void __launch_bounds__(128) attentionF32Kernel(AttentionParams<float> p) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * 4 + (threadIdx.x >> 5);
  const int head = blockIdx.y;
  if (row >= p.Lq) return;
  const int D = p.headDim;
  const int off = head * D;
  const float* q = p.q + (size_t)row * p.qStride + off;
  const int Lk = p.segA + p.segB;
  float m = -INFINITY, l = 0.f;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int base = 0; base < Lk; base += 32) {
    const int key = base + lane;
    float s = -INFINITY;
    if (key < Lk) {
      const int r = key < p.segA ? key : key - p.segA + p.segBOffset;
      const float* k = p.k + (size_t)r * p.kvStride + off;
      float dot = 0.f;
      for (int i = 0; i < D; i++) dot += q[i] * k[i];
      s = dot * p.scale;
    }
    float mx = s;
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    const float mNew = fmaxf(m, mx);
    const float corr = expf(m - mNew);
    const float e = key < Lk ? expf(s - mNew) : 0.f;
    float sum = e;
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    l = l * corr + sum;
    m = mNew;
#pragma unroll
    for (int j = 0; j < 4; j++) acc[j] *= corr;
    const int n = min(32, Lk - base);
    for (int t = 0; t < n; t++) {
      const float pt = __shfl_sync(0xffffffffu, e, t);
      const int kk = base + t;
      const int r = kk < p.segA ? kk : kk - p.segA + p.segBOffset;
      const float* v = p.v + (size_t)r * p.kvStride + off;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int dd = lane + 32 * j;
        if (dd < D) acc[j] += pt * v[dd];
      }
    }
  }
  float* o = p.o + (size_t)row * p.oStride + off;
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const int dd = lane + 32 * j;
    if (dd < D) o[dd] = acc[j] / l;
  }
}

}  // namespace

void flashAttention(const AttentionParams<float>& p, cudaStream_t s) {
  if (p.Lq == 0) return;
  if (p.segA + p.segB == 0) throw NativeError("attention over zero keys");
  if (p.headDim > 128) throw NativeError("native fp32 attention supports head_dim up to 128");
  dim3 grid(ceilDiv(p.Lq, 4), p.heads);
  attentionF32Kernel<<<grid, 128, 0, s>>>(p);
  CUDA_LAUNCH_CHECK();
}

// 0: choose; 4: 4 warps x 16 rows; 8: 8 warps x 16 rows; 2: 4 warps x 32 rows, 64-key tiles; 3: 32-key tiles
int attentionVariant = 0;

void flashAttention(const AttentionParams<bf16>& p, cudaStream_t s) {
  if (p.Lq == 0) return;
  // 128-row tiles halve the K/V traffic from L2 (every query tile streams all keys of its head) and,
  // with two m-tiles per warp, the shared-memory reads per mma; 64-row tiles keep more CTAs in flight
  // when there are few queries.
  const bool wide = (long long)p.Lq * p.heads >= 128LL * 264;
  const char* env = std::getenv("SSN_ATTENTION_VARIANT");  // benchmarks: force a variant
  const int forced = attentionVariant ? attentionVariant : (env ? std::atoi(env) : 0);
  const int variant = forced ? forced : (wide ? 2 : 4);  // measured: native/NOTES.md, v2
  if (p.segA + p.segB == 0) throw NativeError("attention over zero keys");
  if (p.qStride % 8 || p.kvStride % 8 || p.oStride % 8) throw NativeError("attention: row strides must be multiples of 8");
  switch (p.headDim) {
    case 16: launch<16, 4, 1>(p, s); break;
    case 32: launch<32, 4, 1>(p, s); break;
    case 64:
      if (variant == 2 || variant == 3) launch<64, 4, 2>(p, s);
      else if (variant == 8) launch<64, 8, 1>(p, s);
      else launch<64, 4, 1>(p, s);
      break;
    case 128:
      if (variant == 2) launch<128, 4, 2>(p, s);
      else if (variant == 3) launch<128, 4, 2, 32>(p, s);
      else if (variant == 8) launch<128, 8, 1>(p, s);
      else launch<128, 4, 1>(p, s);
      break;
    default: throw NativeError("native attention supports head_dim 16, 32, 64 or 128, got " + std::to_string(p.headDim));
  }
}

}  // namespace ssn

namespace ssn {

double runAttention(const bf16* q, const bf16* k, const bf16* v, bf16* o, int Lq, int Lk, int heads, int headDim,
                    int variant, int reps) {
  const int d = heads * headDim;
  AttentionParams<bf16> p{};
  p.q = q; p.k = k; p.v = v; p.o = o;
  p.qStride = p.kvStride = p.oStride = d;
  p.Lq = Lq; p.heads = heads; p.headDim = headDim;
  p.segA = Lk > Lq ? Lk - Lq : 0; p.segB = Lk - p.segA; p.segBOffset = p.segA;
  p.scale = 1.f / std::sqrt(static_cast<float>(headDim));
  const int saved = attentionVariant;
  attentionVariant = variant;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  std::unique_ptr<CudnnSdpa> sdpa;
  const bool ownFp8 = variant == kHopperFp8Variant || variant == kHopperFp8AttendVariant;
  const bool fp8 = variant == kCudnnFp8Variant || variant == kCudnnFp8AttendVariant || ownFp8;
  if (variant == kCudnnVariant || fp8) {
    sdpa = CudnnSdpa::create(device);
    if (!sdpa) throw NativeError("cuDNN attention unavailable: " + CudnnSdpa::describe());
  }
  std::unique_ptr<Fp8Attention> fp8Attention;
  if (fp8) {
    fp8Attention = std::make_unique<Fp8Attention>(sdpa.get());
    if (ownFp8) fp8Attention->setOwnKernel(device);
    if (!fp8Attention->run(q, k, v, o, Lq, Lk, heads, headDim, d, d, d, p.scale, 0))
      throw NativeError("cuDNN has no FP8 attention plan for this shape on this device");
  }
  std::unique_ptr<HopperAttention> hopper;
  if (variant == kHopperVariant) hopper = std::make_unique<HopperAttention>(device);
  const auto once = [&] {
    if (hopper) return hopper->run(p, 0);
    if (variant == kCudnnFp8Variant || variant == kHopperFp8Variant) {
      fp8Attention->run(q, k, v, o, Lq, Lk, heads, headDim, d, d, d, p.scale, 0);
      return;
    }
    if (variant == kCudnnFp8AttendVariant || variant == kHopperFp8AttendVariant) {
      fp8Attention->attendAndDequantize(o, Lq, Lk, heads, headDim, d, p.scale, 0);
      return;
    }
    if (!sdpa) return flashAttention(p, 0);
    if (!sdpa->run(q, k, v, o, Lq, Lk, heads, headDim, d, d, d, p.scale, 0))
      throw NativeError("cuDNN has no attention plan for this shape");
  };
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  once();
  CUDA_CHECK(cudaEventRecord(a, 0));
  for (int i = 0; i < reps; i++) once();
  CUDA_CHECK(cudaEventRecord(b, 0));
  CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0.f;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  attentionVariant = saved;
  return reps > 0 ? ms / reps : 0.0;
}

}  // namespace ssn
