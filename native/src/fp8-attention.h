// FP8 (E4M3) attention over the engine's bf16 operands (engine.attention: fp8): each of q, k and v quantised with one
// scale of its own (from its largest magnitude, found on the device, so a forward needs no host round trip and stays
// one CUDA graph), cuDNN's fused FP8 attention, and the output turned back into bf16.
#pragma once
#include "common.h"
#include "cudnn-sdpa.h"

#include <cstdint>
#include <vector>

namespace ssn {

class Fp8Attention {
 public:
  explicit Fp8Attention(CudnnSdpa* sdpa) : sdpa_(sdpa) {}
  Fp8Attention(const Fp8Attention&) = delete;
  Fp8Attention& operator=(const Fp8Attention&) = delete;

  /** o = softmax(scale q kᵀ) v as CudnnSdpa::run, through E4M3. Returns false when the operands' rows are not 16-byte
      aligned (nothing launched) or cuDNN has no FP8 plan for the shape on this device (the quantisation has run; o is
      not written). */
  bool run(const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int heads, int headDim, int qStride,
           int kvStride, int oStride, float scale, cudaStream_t s);

  /** The two halves of run, for timing the attention apart from the quantisation (runAttention). */
  void quantize(const bf16* q, const bf16* k, const bf16* v, int lq, int lk, int d, int qStride, int kvStride,
                cudaStream_t s);
  bool attendAndDequantize(bf16* o, int lq, int lk, int heads, int headDim, int oStride, float scale, cudaStream_t s);

  /** The device buffers' addresses (a captured CUDA graph holds them). */
  void addresses(std::vector<uintptr_t>& out) const;

 private:
  CudnnSdpa* sdpa_;
  DeviceBuffer q8_, k8_, v8_, o8_;  // E4M3, rows of d contiguous (o8_: one output per key run)
  DeviceBuffer stats_;              // the key runs' log-sum-exps when split
  DeviceBuffer scalars_;            // amaxes, scales and descales, one 16-byte slot each (see the .cu)
};

}  // namespace ssn
