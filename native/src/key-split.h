// Attention over keys cut into n equal runs ("split keys"): cuDNN attends every run as one entry of a batch, so a
// call at 4680 queries has n times the tiles to spread over the GPU's SMs; each run's partial output and log-sum-exp
// are merged here. The merge is exact up to the partials' rounding: o = Σ_s exp(lse_s - lse) o_s, lse = log Σ_s exp(lse_s).
#pragma once
#include "common.h"

#include <cstdint>
#include <vector>

namespace ssn {

/** How many runs to cut lk keys into for lq queries of `heads` heads on a GPU of `sms` SMs: 2 when one call has
    fewer than four waves of 128-query tiles and each half keeps at least 2048 keys, else 1. `forced` > 0 (env
    SSN_ATTENTION_SPLIT) is taken when lk divides by it. Always 1 where the merge cannot run (headDim not a multiple
    of 8). */
int keySplits(int lq, int lk, int heads, int headDim, int sms, int forced);

/** SSN_ATTENTION_SPLIT: the number of key runs every call is cut into (1: never split), or 0 (unset or "auto"):
    keySplits decides by the GPU's fill. Throws on any other value. */
int forcedKeySplits();

/** o [lq, heads * headDim] (row stride oStride) from n partials [n, lq, heads * headDim] (contiguous) in bf16 and
    their log-sum-exps lse [n, heads, lq]. headDim a multiple of 8; o 16-byte aligned with oStride a multiple of 8. */
void mergeKeySplits(const bf16* parts, const float* lse, int n, int lq, int heads, int headDim, bf16* o, int oStride,
                    cudaStream_t s);
/** The bf16 partial outputs and log-sum-exps of calls whose keys are cut into runs, grown on demand. */
struct KeySplitScratch {
  DeviceBuffer parts, lse;  // [splits, lq, heads * headDim] bf16 and [splits, heads, lq] float
  void reserve(int splits, int lq, int heads, int headDim) {
    parts.reserve((size_t)splits * lq * heads * headDim * sizeof(bf16));
    lse.reserve((size_t)splits * heads * lq * sizeof(float));
  }
  /** mergeKeySplits of what the runs wrote, into o. */
  void merge(int splits, int lq, int heads, int headDim, bf16* o, int oStride, cudaStream_t s) const {
    mergeKeySplits(parts.as<bf16>(), lse.as<float>(), splits, lq, heads, headDim, o, oStride, s);
  }
  /** The buffers' device addresses (a captured CUDA graph holds them). */
  void addresses(std::vector<uintptr_t>& out) const {
    out.push_back(reinterpret_cast<uintptr_t>(parts.ptr));
    out.push_back(reinterpret_cast<uintptr_t>(lse.ptr));
  }
};

/** The same from E4M3 partials, each value times *descale (a device scalar). */
void mergeKeySplitsFp8(const uint8_t* parts, const float* lse, int n, int lq, int heads, int headDim,
                       const float* descale, bf16* o, int oStride, cudaStream_t s);

}  // namespace ssn
