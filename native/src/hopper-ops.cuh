// Device helpers of the own Hopper kernels (hopper-attention.cu, hopper-fp8-attention.cu): mbarriers, the tensor-memory
// accelerator's 2-D copies, wgmma's fences and shared-memory descriptors; and the driver's tensor-map encoder.
#pragma once
#include "common.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <cmath>
#include <mutex>

/** wgmma's accumulator operands: the register list of N fp32 values and their read-write constraints on array d. */
#define SSN_WGMMA_D64 "{" \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21," \
    "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41," \
    "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61," \
    "%62, %63" \
    "}"
#define SSN_WGMMA_OUT64(d) \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
    "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), \
    "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
    "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), \
    "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), \
    "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), \
    "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), \
    "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define SSN_WGMMA_D88 "{" \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21," \
    "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41," \
    "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61," \
    "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81," \
    "%82, %83, %84, %85, %86, %87" \
    "}"
#define SSN_WGMMA_OUT88(d) \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
    "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), \
    "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
    "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), \
    "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), \
    "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), \
    "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), \
    "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), \
    "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), \
    "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), \
    "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])

namespace ssn {
namespace hopper {

__device__ __forceinline__ uint32_t smemAddress(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void barrierInit(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void barrierExpectBytes(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void barrierArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void barrierWait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
__device__ __forceinline__ void tmaLoad(uint32_t dst, const CUtensorMap* map, int column, int row, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(row), "r"(bar)
      : "memory");
}

__device__ __forceinline__ void wgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaWaitAll() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
/** Keeps the compiler from moving reads or writes of accumulator registers across the asynchronous products. */
template <int N> __device__ __forceinline__ void fenceRegisters(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}

/** Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte offsets (16-byte units). */
__device__ __forceinline__ uint64_t descriptor(uint32_t address, uint32_t leadingBytes, uint32_t strideBytes) {
  return static_cast<uint64_t>((address & 0x3FFFF) >> 4) | static_cast<uint64_t>((leadingBytes >> 4) & 0x3FFF) << 16 |
         static_cast<uint64_t>((strideBytes >> 4) & 0x3FFF) << 32 | 1ull << 62;
}


/** The mbarriers between one producer thread and the consumer threads over kStages stages, 8 bytes each from `base`:
    the query tile's "full", and each stage's key and value tiles' "full" (the producer's copies have landed) and "empty"
    (every consumer thread is done with it). */
template <int kStages> struct PipelineBarriers {
  static constexpr int kBytes = 8 * (1 + 4 * kStages);
  uint32_t base;
  __device__ uint32_t qFull() const { return base; }
  __device__ uint32_t kFull(int s) const { return base + 8u * (1 + s); }
  __device__ uint32_t kEmpty(int s) const { return base + 8u * (1 + kStages + s); }
  __device__ uint32_t vFull(int s) const { return base + 8u * (1 + 2 * kStages + s); }
  __device__ uint32_t vEmpty(int s) const { return base + 8u * (1 + 3 * kStages + s); }
  /** By one thread, before the CTA's first __syncthreads. */
  __device__ void init(int consumerThreads) const {
    barrierInit(qFull(), 1);
    for (int s = 0; s < kStages; s++) {
      barrierInit(kFull(s), 1);
      barrierInit(vFull(s), 1);
      barrierInit(kEmpty(s), consumerThreads);
      barrierInit(vEmpty(s), consumerThreads);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
};

/** The producer thread's loop over n key tiles: each stage's key tile, then its value tile, once the consumers have
    released the stage (a fresh barrier passes parity 1, so the first round waits for nothing). loadK(t, stage) and
    loadV(t, stage) issue the copies of kBytes / vBytes. */
template <int kStages, class LoadK, class LoadV>
__device__ __forceinline__ void produceTiles(const PipelineBarriers<kStages>& bars, int n, uint32_t kBytes, uint32_t vBytes,
                                             LoadK loadK, LoadV loadV) {
  for (int t = 0; t < n; t++) {
    const int s = t % kStages;
    const uint32_t parity = ((t / kStages) & 1) ^ 1;
    barrierWait(bars.kEmpty(s), parity);
    barrierExpectBytes(bars.kFull(s), kBytes);
    loadK(t, s);
    barrierWait(bars.vEmpty(s), parity);
    barrierExpectBytes(bars.vFull(s), vBytes);
    loadV(t, s);
  }
}

/**
 * The consumer warpgroups' loop over n key tiles: tile t's scores issued together with tile t-1's P V, tile t's
 * softmax run while that product runs. The two consumer warpgroups take turns to issue (named barriers 1 and 2, each
 * passed when the other warpgroup arrives), so one's softmax overlaps the other's products; warpgroup 0 goes first,
 * and warpgroup 1's last arrival is left out so that every barrier's arrivals match its waits.
 * issueQK(t) / issuePV(t): wait for the stage's tile, issue, commit. softmax(t): the scores to probabilities.
 * packP(): the probabilities into A fragments. rescale(): the output to the latest maxima. fenceScores /
 * fenceOutput: keep the compiler from moving register accesses across the asynchronous products.
 */
template <int kStages, class QK, class PV, class Softmax, class Pack, class Rescale, class FenceS, class FenceO>
__device__ __forceinline__ void consumeTiles(const PipelineBarriers<kStages>& bars, int consumer, int n, QK issueQK,
                                             PV issuePV, Softmax softmax, Pack packP, Rescale rescale, FenceS fenceScores,
                                             FenceO fenceOutput) {
  const int myTurn = 1 + consumer, otherTurn = 2 - consumer;
  const auto waitTurn = [&] { asm volatile("bar.sync %0, 256;\n" ::"r"(myTurn) : "memory"); };
  const auto passTurn = [&] { asm volatile("bar.arrive %0, 256;\n" ::"r"(otherTurn) : "memory"); };
  if (consumer == 1) asm volatile("bar.arrive 1, 256;\n" ::: "memory");
  barrierWait(bars.qFull(), 0);
  waitTurn();
  issueQK(0);
  passTurn();
  wgmmaWaitAll();
  fenceScores();
  barrierArrive(bars.kEmpty(0));
  softmax(0);
  packP();
  for (int t = 1; t < n; t++) {
    waitTurn();
    issueQK(t);
    fenceOutput();
    issuePV(t - 1);
    passTurn();
    asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    fenceScores();
    barrierArrive(bars.kEmpty(t % kStages));
    softmax(t);
    wgmmaWaitAll();
    fenceOutput();
    barrierArrive(bars.vEmpty((t - 1) % kStages));
    rescale();
    packP();
  }
  waitTurn();
  fenceOutput();
  issuePV(n - 1);
  if (consumer == 0) passTurn();
  wgmmaWaitAll();
  fenceOutput();
  barrierArrive(bars.vEmpty((n - 1) % kStages));
}

/** A consumer thread's online softmax (base 2) over its two query rows (g and g + 8 of its warp's 16): running maxima
    m, sums l, and the factors c that rescale what the output accumulated before the latest key tile. */
struct RowSoftmax {
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f, c0 = 1.f, c1 = 1.f;

  /** One key tile's scores (wgmma's accumulator layout: per 8-column chunk, 2 values of row g then 2 of row g + 8)
      to probabilities times exp2(-m); columns at or past `valid` are masked out. */
  template <int N> __device__ __forceinline__ void update(float (&sc)[N], int valid, int t4, float scaleLog2) {
    if (valid < 2 * N) {
#pragma unroll
      for (int i = 0; i < N; i++)
        if (8 * (i / 4) + 2 * t4 + (i & 1) >= valid) sc[i] = -INFINITY;
    }
    float x0 = -INFINITY, x1 = -INFINITY;
#pragma unroll
    for (int i = 0; i < N / 4; i++) {
      x0 = fmaxf(x0, fmaxf(sc[4 * i], sc[4 * i + 1]));
      x1 = fmaxf(x1, fmaxf(sc[4 * i + 2], sc[4 * i + 3]));
    }
    x0 = fmaxf(x0, __shfl_xor_sync(0xffffffffu, x0, 1));
    x0 = fmaxf(x0, __shfl_xor_sync(0xffffffffu, x0, 2));
    x1 = fmaxf(x1, __shfl_xor_sync(0xffffffffu, x1, 1));
    x1 = fmaxf(x1, __shfl_xor_sync(0xffffffffu, x1, 2));
    const float n0 = fmaxf(m0, x0 * scaleLog2), n1 = fmaxf(m1, x1 * scaleLog2);
    c0 = exp2f(m0 - n0);
    c1 = exp2f(m1 - n1);
    m0 = n0;
    m1 = n1;
    float s0 = 0.f, s1 = 0.f;
#pragma unroll
    for (int i = 0; i < N / 4; i++) {
      sc[4 * i] = exp2f(fmaf(sc[4 * i], scaleLog2, -n0));
      sc[4 * i + 1] = exp2f(fmaf(sc[4 * i + 1], scaleLog2, -n0));
      sc[4 * i + 2] = exp2f(fmaf(sc[4 * i + 2], scaleLog2, -n1));
      sc[4 * i + 3] = exp2f(fmaf(sc[4 * i + 3], scaleLog2, -n1));
      s0 += sc[4 * i] + sc[4 * i + 1];
      s1 += sc[4 * i + 2] + sc[4 * i + 3];
    }
    l0 = l0 * c0 + s0;
    l1 = l1 * c1 + s1;
  }
  /** Rescales a 64-wide output accumulator (same layout) to the latest maxima. */
  __device__ __forceinline__ void rescale(float (&o)[64]) const {
#pragma unroll
    for (int i = 0; i < 16; i++) {
      o[4 * i] *= c0;
      o[4 * i + 1] *= c0;
      o[4 * i + 2] *= c1;
      o[4 * i + 3] *= c1;
    }
  }
  /** After the last tile: each row's sum over the 4 threads that hold the row. */
  __device__ __forceinline__ void finish() {
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  }
  /** log(sum exp(x)) of each row in natural log, for merging key runs. */
  __device__ __forceinline__ float lse0() const { return (m0 + log2f(l0)) * 0.6931471805599453f; }
  __device__ __forceinline__ float lse1() const { return (m1 + log2f(l1)) * 0.6931471805599453f; }
};

__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

/** A consumer thread's two rows (row0 and row0 + 8) of its 64 x 128 output accumulator, divided by the row sums and
    times `scale`, as bf16 in o (row stride oStride) at head `head`'s columns; or, when the keys were cut into runs
    (parts non-null), into run `split`'s partial [split, lq, heads * 128] with the rows' log-sum-exps in
    lse [split, heads, lq]. Rows at or past lq are not written. */
__device__ __forceinline__ void storeOutput(const float (&o)[64], const RowSoftmax& softmax, float scale, bf16* out, int oStride,
                                            bf16* parts, float* lse, int split, int lq, int heads, int head, int row0,
                                            int t4) {
  const int row1 = row0 + 8, d = heads * 128, column = head * 128;
  const float r0 = softmax.l0 > 0.f ? scale / softmax.l0 : 0.f, r1 = softmax.l1 > 0.f ? scale / softmax.l1 : 0.f;
  if (parts) {
    out = parts + (size_t)split * lq * d;
    oStride = d;
  }
#pragma unroll
  for (int i = 0; i < 16; i++) {
    const int c = column + 8 * i + 2 * t4;
    if (row0 < lq) *reinterpret_cast<uint32_t*>(out + (size_t)row0 * oStride + c) = packBf16(o[4 * i] * r0, o[4 * i + 1] * r0);
    if (row1 < lq) *reinterpret_cast<uint32_t*>(out + (size_t)row1 * oStride + c) = packBf16(o[4 * i + 2] * r1, o[4 * i + 3] * r1);
  }
  if (parts && t4 == 0) {
    float* l = lse + ((size_t)split * heads + head) * lq;
    if (row0 < lq) l[row0] = softmax.lse0();
    if (row1 < lq) l[row1] = softmax.lse1();
  }
}

/** cuTensorMapEncodeTiled through the runtime (the library does not link the driver). */
inline PFN_cuTensorMapEncodeTiled_v12000 tensorMapEncoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) == cudaSuccess &&
        found == cudaDriverEntryPointSuccess)
      encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
    cudaGetLastError();
  });
  if (!encode) throw NativeError("Hopper attention: the driver has no cuTensorMapEncodeTiled");
  return encode;
}

/** A 2-D tensor map over `rows` rows of `columns` elements (`type`, elementBytes each; rows pitchBytes apart), read in
    boxes of boxRows rows by one 128-byte swizzle span; rows and columns past the ends read as zeros. */
inline CUtensorMap spanMap(CUtensorMapDataType type, int elementBytes, const void* base, int rows, int columns,
                           size_t pitchBytes, int boxRows) {
  CUtensorMap map{};
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(columns), static_cast<cuuint64_t>(rows > 1 ? rows : 1)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(pitchBytes)};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(128 / elementBytes), static_cast<cuuint32_t>(boxRows)};
  const cuuint32_t elementStrides[2] = {1, 1};
  const CUresult r = tensorMapEncoder()(&map, type, 2, const_cast<void*>(base), dims, strides, box, elementStrides,
                                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw NativeError("Hopper attention: cuTensorMapEncodeTiled failed (" + std::to_string(static_cast<int>(r)) + "; rows " +
                      std::to_string(rows) + ", pitch " + std::to_string(pitchBytes) + " bytes)");
  return map;
}

}  // namespace hopper
}  // namespace ssn
