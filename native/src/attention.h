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
/** bf16 kernel variant: 0 chooses by size (or env SSN_ATTENTION_VARIANT); 4 = 4 warps x 16 rows, 8 = 8 warps x
    16 rows, 2 = 4 warps x 32 rows with 64-key tiles, 3 = the same with 32-key tiles. */
extern int attentionVariant;
/** fp32: exact fp32 arithmetic on CUDA cores (small models, tests); head_dim <= 128. */
void flashAttention(const AttentionParams<float>& p, cudaStream_t s);

/** runAttention's variant for cuDNN's fused attention (cudnn-sdpa.h) instead of the own kernel. */
constexpr int kCudnnVariant = 9;
/** runAttention's variants for FP8 attention (fp8-attention.h): the whole path (quantise q, k, v, attend,
    dequantise o), and the attention with its dequantisation alone (inputs quantised once, before the timing). */
constexpr int kCudnnFp8Variant = 10;
constexpr int kCudnnFp8AttendVariant = 11;
/** runAttention's variant for the own Hopper kernel (hopper-attention.h). */
constexpr int kHopperVariant = 12;
/** runAttention's variants for FP8 attention on the own Hopper kernel (hopper-fp8-attention.h): the whole path, and the
    attention alone (as kCudnnFp8Variant and kCudnnFp8AttendVariant). */
constexpr int kHopperFp8Variant = 13;
constexpr int kHopperFp8AttendVariant = 14;

/** Runs the bf16 kernel (variant as attentionVariant, or one of the cuDNN variants) on device arrays q, o [Lq, d], k, v [Lk, d] (keys seen as
    [Lk - Lq cache rows || Lq block rows]) once, then `reps` timed times; returns milliseconds per call. */
double runAttention(const bf16* q, const bf16* k, const bf16* v, bf16* o, int Lq, int Lk, int heads, int headDim,
                    int variant, int reps);

}  // namespace ssn
