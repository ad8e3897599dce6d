// FP8 (E4M3) attention on the own Hopper kernel (hopper-fp8-attention.cu): wgmma on E4M3 queries, keys and values with
// fp32 accumulation, head_dim 128. wgmma reads both E4M3 operands K-major, so the values are kept transposed: a head's
// 128 value columns as rows of keys (quantizeValuesTransposed), in the key order the kernel's probabilities leave its
// registers in.
#pragma once
#include "common.h"
#include "key-split.h"

#include <cstdint>
#include <vector>

namespace ssn {

/** Rows [from, to) of v (bf16, `heads` heads of 128, row stride vStride) times *scale as E4M3 into vt [heads * 128,
    pitch bytes]: head h's value column c of key j at row h * 128 + c. Keys past `to` up to the next multiple of 64
    become zeros; rows from the multiple of 64 at or below `from` are written again. pitch a multiple of 64. */
void quantizeValuesTransposed(const bf16* v, int vStride, int from, int to, int heads, const float* scale, uint8_t* vt,
                              int pitch, cudaStream_t s);

/** One call's E4M3 operands: q [lq, heads * 128] and k [lk, heads * 128] (rows contiguous), vt as
    quantizeValuesTransposed writes it (keys [0, lk) written, pitch >= lk rounded up to 64), and the descales that
    undo each one's scale (device scalars). */
struct HopperFp8Operands {
  const uint8_t* q = nullptr;
  const uint8_t* k = nullptr;
  const uint8_t* vt = nullptr;
  int pitch = 0;
  const float* descaleQ = nullptr;
  const float* descaleK = nullptr;
  const float* descaleV = nullptr;
};

class HopperFp8Attention {
 public:
  /** Throws where the kernel cannot run (not a Hopper GPU, or a build without sm_90a). */
  explicit HopperFp8Attention(int device);
  /** o [lq, heads * 128] bf16 (row stride oStride) = softmax(scale q kᵀ) v; keys cut into runs and merged as the bf16
      kernel's. */
  void run(const HopperFp8Operands& t, bf16* o, int lq, int lk, int heads, int oStride, float scale, cudaStream_t s);
  /** The scratch's device addresses (a captured CUDA graph holds them). */
  void addresses(std::vector<uintptr_t>& out) const { split_.addresses(out); }

 private:
  int sms_ = 0;
  KeySplitScratch split_;
};

}  // namespace ssn
