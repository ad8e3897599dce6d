// The own attention kernel for Hopper GPUs (hopper-attention.cu): bf16, head_dim 128, wgmma and TMA.
#pragma once
#include "attention.h"
#include "key-split.h"

#include <vector>

namespace ssn {

/** Whether device `device` is a Hopper GPU (compute capability 9.0) and this build carries the sm_90a kernel. */
bool hopperAttentionAvailable(int device);

/** Runs AttentionParams<bf16> (keys from two row segments, no mask) on a Hopper GPU; keys cut into runs and merged
    (key-split.h) when one run would leave the GPU's SMs short of work. Owns the runs' scratch. */
class HopperAttention {
 public:
  explicit HopperAttention(int device);
  /** head_dim 128, row strides multiples of 8 elements, q / k / v 16-byte aligned. */
  static bool supports(const AttentionParams<bf16>& p);
  void run(const AttentionParams<bf16>& p, cudaStream_t stream);
  /** Appends the scratch's device addresses (a CUDA graph's key: a graph replays the addresses it captured). */
  void addresses(std::vector<uintptr_t>& out) const { split_.addresses(out); }

 private:
  int splitsFor(int lq, int lk, int heads) const;
  int sms_ = 0;
  int keysPerTile_ = 176;  // key rows a tile (176, or 128 with env SSN_HOPPER_KEYS=128)
  KeySplitScratch split_;
};

}  // namespace ssn
