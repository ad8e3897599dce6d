// Attention for Hopper (sm_90a) in the FlashAttention-3 manner, bf16, head_dim 128, no mask: one producer warp
// streams K and V tiles into shared memory with the tensor-memory accelerator (TMA), two stages deep, each stage
// released by an mbarrier; two consumer warpgroups of 64 query rows each compute S = Q K^T and O += P V with
// wgmma (Q, K and V from shared memory, P from registers) and the online softmax in base 2 between the two.
// Keys come from two row segments (cache, then the block's own rows) read through two tensor maps each, so rows
// past a segment's end are zero-filled by the copy engine and masked out of the softmax.
#include "hopper-attention.h"
#include "hopper-ops.cuh"
#include "key-split.h"

#include <cmath>
#include <cstdlib>

namespace ssn {
using namespace hopper;
namespace {

constexpr int kHeadDim = 128;
constexpr int kRowsPerCta = 128;     // query rows: 64 per consumer warpgroup
constexpr int kStages = 2;
constexpr int kThreads = 384;        // warpgroup 0 produces, 1 and 2 consume
constexpr int kConsumerThreads = 256;
constexpr int kRowBytes = 128;       // 64 of a row's 128 columns: one 128-byte swizzle span
constexpr int kQHalfBytes = kRowsPerCta * kRowBytes;
constexpr int kQBytes = 2 * kQHalfBytes;

/** Shared memory for key tiles of KN rows: Q, then kStages K tiles, then kStages V tiles, each tile two 64-column
    halves of KN rows; the mbarriers after them. */
template <int KN> struct Tiles {
  static constexpr int halfBytes = KN * kRowBytes;
  static constexpr int bytes = 2 * halfBytes;
  static constexpr int smemBytes = kQBytes + 2 * kStages * bytes + PipelineBarriers<kStages>::kBytes + 1024;  // + slack to align to 1 KB
};

struct KernelParams {
  int lq, heads;
  int segA, segB, keysPerSplit;    // keys [0, segA) from segment A's rows, [segA, segA + segB) from B's; keys per split
  float scaleLog2;                 // softmax scale * log2(e)
  bf16* o;
  int oStride;
  bf16* parts;                     // splits > 1: [splits, lq, heads * 128] and log-sum-exps [splits, heads, lq]
  float* lse;
};

/** D (64 x N, fp32) = A (64 x 16, shared, K-major) * B (N x 16, shared, K-major)^T, added to D when `accumulate`. */
template <int N> __device__ void wgmmaQK(float (&d)[N / 2], uint64_t descA, uint64_t descB, int accumulate);
template <> __device__ __forceinline__ void wgmmaQK<128>(float (&d)[64], uint64_t descA, uint64_t descB, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      SSN_WGMMA_D64
      ", %64, %65, p, 1, 1, 0, 0;\n}\n"
      : SSN_WGMMA_OUT64(d)
      : "l"(descA), "l"(descB), "r"(accumulate));
}
template <> __device__ __forceinline__ void wgmmaQK<176>(float (&d)[88], uint64_t descA, uint64_t descB, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n176k16.f32.bf16.bf16 "
      SSN_WGMMA_D88
      ", %88, %89, p, 1, 1, 0, 0;\n}\n"
      : SSN_WGMMA_OUT88(d)
      : "l"(descA), "l"(descB), "r"(accumulate));
}

/** D (64 x 128, fp32) += A (64 x 16, registers) * B (16 x 128, shared, MN-major: rows of 128 contiguous columns). */
__device__ __forceinline__ void wgmmaPV(float (&d)[64], const uint32_t (&a)[4], uint64_t descB) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      SSN_WGMMA_D64
      ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : SSN_WGMMA_OUT64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB), "r"(1));
}

/** Which segment and rows the t-th key tile of a split reads: segment A's tiles first, then segment B's. */
template <int kKeysPerTile> struct KeyTiles {
  int aBegin, aEnd, bBegin, bEnd, tilesA, tiles;
  __device__ KeyTiles(const KernelParams& p, int split) {
    const int lk = p.segA + p.segB;
    const int kb = min(lk, split * p.keysPerSplit), ke = min(lk, kb + p.keysPerSplit);
    aBegin = min(kb, p.segA);
    aEnd = min(ke, p.segA);
    bBegin = max(kb, p.segA) - p.segA;
    bEnd = max(ke, p.segA) - p.segA;
    tilesA = (aEnd - aBegin + kKeysPerTile - 1) / kKeysPerTile;
    tiles = tilesA + (bEnd - bBegin + kKeysPerTile - 1) / kKeysPerTile;
  }
  __device__ bool inA(int t) const { return t < tilesA; }
  __device__ int row(int t) const { return inA(t) ? aBegin + t * kKeysPerTile : bBegin + (t - tilesA) * kKeysPerTile; }
  __device__ int valid(int t) const { return min(kKeysPerTile, (inA(t) ? aEnd : bEnd) - row(t)); }
};

template <int kKeysPerTile>
__global__ void __launch_bounds__(kThreads, 1)
    hopperAttentionKernel(const __grid_constant__ CUtensorMap qMap, const __grid_constant__ CUtensorMap kMapA,
                          const __grid_constant__ CUtensorMap kMapB, const __grid_constant__ CUtensorMap vMapA,
                          const __grid_constant__ CUtensorMap vMapB, const KernelParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smemRaw[];
  const uint32_t base = (smemAddress(smemRaw) + 1023u) & ~1023u;
  constexpr int kHalfBytes = Tiles<kKeysPerTile>::halfBytes, kTileBytes = Tiles<kKeysPerTile>::bytes;
  const uint32_t sQ = base, sK = base + kQBytes, sV = sK + kStages * kTileBytes;
  const PipelineBarriers<kStages> bars{sV + kStages * kTileBytes};

  const int tid = threadIdx.x, warpgroup = tid / 128;
  const int mTile = blockIdx.x, head = blockIdx.y, split = blockIdx.z;
  const KeyTiles<kKeysPerTile> tiles(p, split);
  const int column = head * kHeadDim;

  if (tid == 0) bars.init(kConsumerThreads);
  __syncthreads();

  if (warpgroup == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (tid != 0) return;
    barrierExpectBytes(bars.qFull(), kQBytes);
    tmaLoad(sQ, &qMap, column, mTile * kRowsPerCta, bars.qFull());
    tmaLoad(sQ + kQHalfBytes, &qMap, column + 64, mTile * kRowsPerCta, bars.qFull());
    // a tile's two 64-column halves, from segment A's maps or segment B's
    const auto load = [&](uint32_t dst, const CUtensorMap* a, const CUtensorMap* b, int t, uint32_t bar) {
      const CUtensorMap* map = tiles.inA(t) ? a : b;
      tmaLoad(dst, map, column, tiles.row(t), bar);
      tmaLoad(dst + kHalfBytes, map, column + 64, tiles.row(t), bar);
    };
    produceTiles(
        bars, tiles.tiles, kTileBytes, kTileBytes,
        [&](int t, int s) { load(sK + s * kTileBytes, &kMapA, &kMapB, t, bars.kFull(s)); },
        [&](int t, int s) { load(sV + s * kTileBytes, &vMapA, &vMapB, t, bars.vFull(s)); });
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
  const int consumer = warpgroup - 1, lane = tid & 31, warp = (tid & 127) >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const uint32_t qBase = sQ + consumer * 64 * kRowBytes;  // this warpgroup's 64 rows of each half
  // K-major operands (Q, K): rows of 128 bytes, 8-row groups 1024 bytes apart; the leading offset is unused.
  // V is read MN-major: the two 64-column halves kHalfBytes apart, 8-key groups 1024 bytes apart.
  constexpr uint32_t vLeading = kHalfBytes, vStride = 1024;

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; i++) o[i] = 0.f;
  RowSoftmax softmax;
  uint32_t pa[kKeysPerTile / 16][4];
  float sc[kKeysPerTile / 2];
  const auto issueQK = [&](int t) {
    const int s = t % kStages;
    barrierWait(bars.kFull(s), (t / kStages) & 1);
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 16; kk++) {
      const uint32_t inSpan = (kk % 4) * 32;  // 16 columns further into the 128-byte swizzle span
      wgmmaQK<kKeysPerTile>(sc, descriptor(qBase + (kk / 4) * kQHalfBytes + inSpan, 16, 1024),
                            descriptor(sK + s * kTileBytes + (kk / 4) * kHalfBytes + inSpan, 16, 1024), kk > 0);
    }
    wgmmaCommit();
  };
  const auto issuePV = [&](int t) {
    const int s = t % kStages;
    barrierWait(bars.vFull(s), (t / kStages) & 1);
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kKeysPerTile / 16; kk++)
      wgmmaPV(o, pa[kk], descriptor(sV + s * kTileBytes + kk * 16 * kRowBytes, vLeading, vStride));
    wgmmaCommit();
  };

  const auto packP = [&] {
#pragma unroll
    for (int kk = 0; kk < kKeysPerTile / 16; kk++) {
      pa[kk][0] = packBf16(sc[8 * kk], sc[8 * kk + 1]);
      pa[kk][1] = packBf16(sc[8 * kk + 2], sc[8 * kk + 3]);
      pa[kk][2] = packBf16(sc[8 * kk + 4], sc[8 * kk + 5]);
      pa[kk][3] = packBf16(sc[8 * kk + 6], sc[8 * kk + 7]);
    }
  };
  consumeTiles(
      bars, consumer, tiles.tiles, issueQK, issuePV, [&](int t) { softmax.update(sc, tiles.valid(t), t4, p.scaleLog2); },
      packP, [&] { softmax.rescale(o); }, [&] { fenceRegisters(sc); }, [&] { fenceRegisters(o); });

  softmax.finish();
  storeOutput(o, softmax, 1.f, p.o, p.oStride, p.parts, p.lse, split, p.lq, p.heads, head,
              mTile * kRowsPerCta + consumer * 64 + warp * 16 + g, t4);
#endif
}

}  // namespace

namespace {

/** Rows of bf16 (row stride `stride` elements) in boxes of boxRows rows x 64 columns (spanMap). */
CUtensorMap rowMap(const bf16* base, int rows, int columns, int stride, int boxRows) {
  return spanMap(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, sizeof(bf16), base, rows, columns, (size_t)stride * sizeof(bf16), boxRows);
}

}  // namespace

bool hopperAttentionAvailable(int device) {
#ifndef SSN_HOPPER_KERNEL
  (void)device;
  return false;
#else
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (major != 9 || minor != 0) return false;
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, hopperAttentionKernel<128>) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return true;
#endif
}

HopperAttention::HopperAttention(int device) {
  if (!hopperAttentionAvailable(device))
    throw NativeError("engine.attentionKernel hopper: needs a Hopper GPU (compute capability 9.0) and a build with sm_90a");
  CUDA_CHECK(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device));
  CUDA_CHECK(cudaFuncSetAttribute(hopperAttentionKernel<128>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  Tiles<128>::smemBytes));
  CUDA_CHECK(cudaFuncSetAttribute(hopperAttentionKernel<176>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  Tiles<176>::smemBytes));
  forcedKeySplits();  // a bad SSN_ATTENTION_SPLIT fails here, at engine start, not in the first forward
  const char* keys = std::getenv("SSN_HOPPER_KEYS");
  keysPerTile_ = keys && std::atoi(keys) == 128 ? 128 : 176;  // 176: measured faster at 12 and 21 frames (native/NOTES.md v21)
}

int HopperAttention::splitsFor(int lq, int lk, int heads) const {
  return keySplits(lq, lk, heads, kHeadDim, sms_, forcedKeySplits());
}

bool HopperAttention::supports(const AttentionParams<bf16>& p) {
  return p.headDim == kHeadDim && p.qStride % 8 == 0 && p.kvStride % 8 == 0 && p.oStride % 2 == 0 &&
         reinterpret_cast<uintptr_t>(p.q) % 16 == 0 && reinterpret_cast<uintptr_t>(p.k) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(p.v) % 16 == 0 && p.segA + p.segB > 0;
}

void HopperAttention::run(const AttentionParams<bf16>& p, cudaStream_t stream) {
  if (p.Lq == 0) return;
  if (!supports(p)) throw NativeError("Hopper attention: head_dim 128 and 16-byte aligned rows only");
  const int d = p.heads * kHeadDim, lk = p.segA + p.segB;
  const int splits = splitsFor(p.Lq, lk, p.heads);
  KernelParams k{};
  k.lq = p.Lq;
  k.heads = p.heads;
  k.segA = p.segA;
  k.segB = p.segB;
  k.keysPerSplit = (lk + splits - 1) / splits;
  k.scaleLog2 = p.scale * 1.4426950408889634f;
  k.o = p.o;
  k.oStride = p.oStride;
  if (splits > 1) {
    split_.reserve(splits, p.Lq, p.heads, kHeadDim);
    k.parts = split_.parts.as<bf16>();
    k.lse = split_.lse.as<float>();
  }
  const int kn = keysPerTile_;
  const CUtensorMap q = rowMap(p.q, p.Lq, d, p.qStride, kRowsPerCta);
  const CUtensorMap kA = rowMap(p.k, p.segA, d, p.kvStride, kn);
  const CUtensorMap vA = rowMap(p.v, p.segA, d, p.kvStride, kn);
  const CUtensorMap kB = rowMap(p.k + (size_t)p.segBOffset * p.kvStride, p.segB, d, p.kvStride, kn);
  const CUtensorMap vB = rowMap(p.v + (size_t)p.segBOffset * p.kvStride, p.segB, d, p.kvStride, kn);
  const dim3 grid(ceilDiv(p.Lq, kRowsPerCta), p.heads, splits);
  if (kn == 176)
    hopperAttentionKernel<176><<<grid, kThreads, Tiles<176>::smemBytes, stream>>>(q, kA, kB, vA, vB, k);
  else
    hopperAttentionKernel<128><<<grid, kThreads, Tiles<128>::smemBytes, stream>>>(q, kA, kB, vA, vB, k);
  CUDA_LAUNCH_CHECK();
  if (splits > 1) split_.merge(splits, p.Lq, p.heads, kHeadDim, p.o, p.oStride, stream);
}

}  // namespace ssn
