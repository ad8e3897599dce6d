// Flash attention (no mask) over keys taken from two row segments of one K/V buffer:
// rows [0, segA) and rows [segBOffset, segBOffset + segB). The cache lives in segment A and the block's
// own keys in segment B, so a forward can attend to [cache || block] wherever the block rows sit.
#pragma once
#include "common.h"

namespace ssn {

template <typename T>
struct AttentionParams {
  const T* q;  // [Lq, heads * headDim], row stride qStride elements
  const T* k;  // rows of heads * headDim, row stride kvStride
  const T* v;
  T* o;        // [Lq, heads * headDim], row stride oStride
  int qStride, kvStride, oStride;
  int Lq, heads, headDim;
  int segA, segB, segBOffset;
  float scale;    // softmax scale (1 / sqrt(headDim))
};

/** bf16: tensor-core flash attention (head_dim 16, 32, 64, 128). */
void flashAttention(const AttentionParams<bf16>& p, cudaStream_t s);
/** Warps per CTA of the bf16 kernel: 0 chooses by size, 4 or 8 force a variant (benchmarks). */
extern int attentionVariant;
/** fp32: exact fp32 arithmetic on CUDA cores (small models, tests); head_dim <= 128. */
void flashAttention(const AttentionParams<float>& p, cudaStream_t s);

/** Milliseconds per call of the bf16 kernel on hashed data (keys = [Lk - Lq cache rows || Lq block rows]). */
double benchAttention(int Lq, int Lk, int heads, int headDim, int warps, int reps);

}  // namespace ssn
