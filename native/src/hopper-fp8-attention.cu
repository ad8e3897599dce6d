// FP8 (E4M3) attention for Hopper (sm_90a), head_dim 128, no mask, in the manner of hopper-attention.cu (one producer
// warp streaming tiles with TMA, two consumer warpgroups taking turns, tile t's scores issued with tile t-1's P V):
// S = Q Kᵀ and O += P V as E4M3 wgmma with fp32 accumulation; the probabilities go to E4M3 times 448 (they lie in
// [0, 1]) and the descales are applied to the scores and to the output in fp32.
//
// wgmma reads E4M3 operands K-major only. For P V that makes the values' K dimension (keys) the contiguous one, so they
// are stored transposed (quantizeValuesTransposed). And P stays in registers: the accumulator gives a thread keys
// {2t, 2t+1, 8+2t, 9+2t} (+16) of each 32-key group where wgmma's E4M3 A fragment wants positions {4t .. 4t+3} (+16),
// so the transposed values are written with each group's keys in that order.
#include "hopper-fp8-attention.h"
#include "hopper-attention.h"
#include "hopper-ops.cuh"
#include "kernels.h"
#include "key-split.h"

#include <cuda_fp8.h>

#include <cmath>

namespace ssn {
using namespace hopper;
namespace {

constexpr int kHeadDim = 128;           // = the bytes of a head's row, one 128-byte swizzle span
constexpr int kRowsPerCta = 128;
constexpr int kKeysPerTile = 128;
constexpr int kStages = 3;
constexpr int kThreads = 384;
constexpr int kConsumerThreads = 256;
constexpr int kTileBytes = 128 * 128;   // Q, K and Vᵀ tiles alike: 128 rows of 128 bytes
constexpr int kSmemBytes = (1 + 2 * kStages) * kTileBytes + PipelineBarriers<kStages>::kBytes + 1024;
constexpr float kProbabilityScale = 448.f;  // E4M3's largest finite value

struct KernelParams {
  int lq, lk, heads, keysPerSplit;
  float scaleLog2;  // softmax scale * log2(e); times the two descales on the device
  const float* descaleQ;
  const float* descaleK;
  const float* descaleV;
  bf16* o;
  int oStride;
  bf16* parts;
  float* lse;
};

/** The position in its 32-key group that key k (of the group) takes in the transposed values. */
__host__ __device__ constexpr int keyPosition(int k) {
  const int half = k / 16, r = k % 16;
  return 16 * half + (r < 8 ? 4 * (r / 2) + r % 2 : 4 * ((r - 8) / 2) + 2 + r % 2);
}

__device__ __forceinline__ uint32_t packE4m3(float a, float b, float c, float d) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, __NV_E4M3);
  return lo | hi << 16;
}

/** D (64 x 128, fp32) = A (64 x 32, shared, K-major) * B (128 x 32, shared, K-major)^T, E4M3; added to D when `accumulate`. */
__device__ __forceinline__ void wgmmaQK8(float (&d)[64], uint64_t descA, uint64_t descB, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
      SSN_WGMMA_D64
      ", %64, %65, p, 1, 1;\n}\n"
      : SSN_WGMMA_OUT64(d)
      : "l"(descA), "l"(descB), "r"(accumulate));
}

/** D (64 x 128, fp32) += A (64 x 32, registers) * B (128 x 32, shared, K-major)^T, E4M3. */
__device__ __forceinline__ void wgmmaPV8(float (&d)[64], const uint32_t (&a)[4], uint64_t descB) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
      SSN_WGMMA_D64
      ", {%64, %65, %66, %67}, %68, p, 1, 1;\n}\n"
      : SSN_WGMMA_OUT64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB), "r"(1));
}

__global__ void __launch_bounds__(kThreads, 1)
    hopperFp8Kernel(const __grid_constant__ CUtensorMap qMap, const __grid_constant__ CUtensorMap kMap,
                    const __grid_constant__ CUtensorMap vtMap, const KernelParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smemRaw[];
  const uint32_t base = (smemAddress(smemRaw) + 1023u) & ~1023u;
  const uint32_t sQ = base, sK = base + kTileBytes, sV = sK + kStages * kTileBytes;
  const PipelineBarriers<kStages> bars{sV + kStages * kTileBytes};

  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int mTile = blockIdx.x, head = blockIdx.y, split = blockIdx.z;
  const int kb = min(p.lk, split * p.keysPerSplit), ke = min(p.lk, kb + p.keysPerSplit);
  const int n = (ke - kb + kKeysPerTile - 1) / kKeysPerTile;
  const int column = head * kHeadDim;

  if (tid == 0) bars.init(kConsumerThreads);
  __syncthreads();

  if (warpgroup == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (tid != 0) return;
    barrierExpectBytes(bars.qFull(), kTileBytes);
    tmaLoad(sQ, &qMap, column, mTile * kRowsPerCta, bars.qFull());
    produceTiles(
        bars, n, kTileBytes, kTileBytes,
        [&](int t, int s) { tmaLoad(sK + s * kTileBytes, &kMap, column, kb + t * kKeysPerTile, bars.kFull(s)); },
        [&](int t, int s) { tmaLoad(sV + s * kTileBytes, &vtMap, kb + t * kKeysPerTile, column, bars.vFull(s)); });
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
  const int consumer = warpgroup - 1, lane = tid & 31, warp = (tid & 127) >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const uint32_t qBase = sQ + consumer * 64 * 128;
  const float scaleLog2 = p.scaleLog2 * *p.descaleQ * *p.descaleK;

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; i++) o[i] = 0.f;
  RowSoftmax softmax;
  uint32_t pa[4][4];
  float sc[64];
  const auto issueQK = [&](int t) {
    const int s = t % kStages;
    barrierWait(bars.kFull(s), (t / kStages) & 1);
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 32; kk++)
      wgmmaQK8(sc, descriptor(qBase + kk * 32, 16, 1024), descriptor(sK + s * kTileBytes + kk * 32, 16, 1024), kk > 0);
    wgmmaCommit();
  };
  const auto issuePV = [&](int t) {
    const int s = t % kStages;
    barrierWait(bars.vFull(s), (t / kStages) & 1);
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kKeysPerTile / 32; kk++) wgmmaPV8(o, pa[kk], descriptor(sV + s * kTileBytes + kk * 32, 16, 1024));
    wgmmaCommit();
  };

  const auto valid = [&](int t) { return min(kKeysPerTile, ke - (kb + t * kKeysPerTile)); };
  // P times 448 as E4M3 A fragments: per 32-key group, positions 4t..4t+3 take keys 2t, 2t+1, 8+2t, 9+2t (keyPosition)
  const auto packP = [&] {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const float* x = sc + 16 * j;
      constexpr float k = kProbabilityScale;
      pa[j][0] = packE4m3(x[0] * k, x[1] * k, x[4] * k, x[5] * k);
      pa[j][1] = packE4m3(x[2] * k, x[3] * k, x[6] * k, x[7] * k);
      pa[j][2] = packE4m3(x[8] * k, x[9] * k, x[12] * k, x[13] * k);
      pa[j][3] = packE4m3(x[10] * k, x[11] * k, x[14] * k, x[15] * k);
    }
  };

  consumeTiles(
      bars, consumer, n, issueQK, issuePV, [&](int t) { softmax.update(sc, valid(t), t4, scaleLog2); }, packP,
      [&] { softmax.rescale(o); }, [&] { fenceRegisters(sc); }, [&] { fenceRegisters(o); });

  softmax.finish();
  storeOutput(o, softmax, *p.descaleV / kProbabilityScale, p.o, p.oStride, p.parts, p.lse, split, p.lq, p.heads, head,
              mTile * kRowsPerCta + consumer * 64 + warp * 16 + g, t4);
#endif
}

/** vt [heads * 128, pitch] from rows [from0 + 64 * blockIdx.x, + 64) of v, head blockIdx.y: a 64-key tile read as rows,
    transposed in shared memory (each 32-key group in keyPosition order), written as 128 rows of 64 bytes. */
__global__ void __launch_bounds__(256) transposeValuesKernel(const bf16* v, int vStride, int from0, int to, const float* scale,
                                                             uint8_t* vt, int pitch) {
  constexpr int kPitch = 64 + 16;  // bytes a transposed row takes in shared memory (16-byte stores stay aligned)
  __shared__ __align__(16) uint8_t tile[kHeadDim * kPitch];
  const int head = blockIdx.y, key0 = from0 + 64 * blockIdx.x;
  const float sc = *scale;
  for (int i = threadIdx.x; i < 64 * 16; i += blockDim.x) {
    const int k = i / 16, chunk = i % 16, key = key0 + k;
    uint2 q = make_uint2(0, 0);
    if (key < to) q = scaledE4m3x8(*reinterpret_cast<const uint4*>(v + (size_t)key * vStride + head * kHeadDim + chunk * 8), sc);
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&q);
    const int col = (k / 32) * 32 + keyPosition(k % 32);
#pragma unroll
    for (int e = 0; e < 8; e++) tile[(chunk * 8 + e) * kPitch + col] = bytes[e];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kHeadDim * 4; i += blockDim.x) {
    const int row = i / 4, part = i % 4;
    *reinterpret_cast<uint4*>(vt + (size_t)(head * kHeadDim + row) * pitch + key0 + part * 16) =
        *reinterpret_cast<const uint4*>(tile + row * kPitch + part * 16);
  }
}

/** Rows of E4M3 bytes (rows `pitch` bytes apart) in boxes of boxRows rows x 128 bytes (spanMap). */
CUtensorMap byteMap(const uint8_t* base, int rows, int columns, int pitch) {
  return spanMap(CU_TENSOR_MAP_DATA_TYPE_UINT8, 1, base, rows, columns, pitch, 128);
}

}  // namespace

void quantizeValuesTransposed(const bf16* v, int vStride, int from, int to, int heads, const float* scale, uint8_t* vt,
                              int pitch, cudaStream_t s) {
  if (pitch % 64 || to > pitch) throw NativeError("transposed values: pitch must be a multiple of 64 holding every key");
  const int from0 = from / 64 * 64;
  if (to <= from0) return;
  transposeValuesKernel<<<dim3(ceilDiv(to - from0, 64), heads), 256, 0, s>>>(v, vStride, from0, to, scale, vt, pitch);
  CUDA_LAUNCH_CHECK();
}

HopperFp8Attention::HopperFp8Attention(int device) {
  if (!hopperAttentionAvailable(device))
    throw NativeError("the Hopper FP8 attention kernel needs a Hopper GPU (compute capability 9.0) and a build with sm_90a");
  CUDA_CHECK(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device));
  CUDA_CHECK(cudaFuncSetAttribute(hopperFp8Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
}

void HopperFp8Attention::run(const HopperFp8Operands& t, bf16* o, int lq, int lk, int heads, int oStride, float scale,
                             cudaStream_t s) {
  if (lq == 0) return;
  if (lk <= 0 || t.pitch < (lk + 63) / 64 * 64) throw NativeError("Hopper FP8 attention: no keys, or values transposed too short");
  const int d = heads * kHeadDim;
  // runs start on a key tile; none may be left empty
  const auto keysPerRun = [lk](int splits) { return ceilDiv(ceilDiv(lk, splits), kKeysPerTile) * kKeysPerTile; };
  int splits = keySplits(lq, lk, heads, kHeadDim, sms_, forcedKeySplits());
  while (splits > 1 && (splits - 1) * keysPerRun(splits) >= lk) splits--;
  KernelParams k{};
  k.lq = lq;
  k.lk = lk;
  k.heads = heads;
  k.keysPerSplit = keysPerRun(splits);
  k.scaleLog2 = scale * 1.4426950408889634f;
  k.descaleQ = t.descaleQ;
  k.descaleK = t.descaleK;
  k.descaleV = t.descaleV;
  k.o = o;
  k.oStride = oStride;
  if (splits > 1) {
    split_.reserve(splits, lq, heads, kHeadDim);
    k.parts = split_.parts.as<bf16>();
    k.lse = split_.lse.as<float>();
  }
  const CUtensorMap q = byteMap(t.q, lq, d, d);
  const CUtensorMap km = byteMap(t.k, lk, d, d);
  const CUtensorMap vt = byteMap(t.vt, d, (lk + 63) / 64 * 64, t.pitch);
  hopperFp8Kernel<<<dim3(ceilDiv(lq, kRowsPerCta), heads, splits), kThreads, kSmemBytes, s>>>(q, km, vt, k);
  CUDA_LAUNCH_CHECK();
  if (splits > 1) split_.merge(splits, lq, heads, kHeadDim, o, oStride, s);
}

}  // namespace ssn
