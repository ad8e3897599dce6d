// FP8 (E4M3) attention over the engine's bf16 operands (engine.attention: fp8): each of q, k and v quantised with one
// scale of its own (from its largest magnitude, found on the device, so a forward needs no host round trip and stays
// one CUDA graph), cuDNN's fused FP8 attention or the own Hopper kernel (setOwnKernel), and the output in bf16.
#pragma once
#include "common.h"
#include "cudnn-sdpa.h"
#include "hopper-fp8-attention.h"

#include <cstdint>
#include <memory>
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

  /** The engine's path, per layer of the forward: the keys and values of rows [0, cacheRows) keep their E4M3 copy
      (and scale) from the forward that last quantised them, so only the queries and the block's rows [cacheRows, lk)
      are quantised, unless beginForward found the cache changed: then every row is, with the scale taken from all of
      them and room for block rows up to twice as large (larger ones saturate). Returns false as run. */
  bool runLayer(int layer, const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int cacheRows, int heads,
                int headDim, int qStride, int kvStride, int oStride, float scale, cudaStream_t s);
  /** Before a forward of `layers` layers over `rows` rows of keys: whether the cache rows (version, count) are those
      last quantised; if not, this forward's runLayer calls quantise every row. */
  void beginForward(uint64_t cacheVersion, int cacheRows, int rows, int layers, int d);
  /** The own Hopper FP8 kernel (hopper-fp8-attention.h) on `device` instead of cuDNN's (head_dim 128 only; values kept
      transposed), or cuDNN's again with device < 0. The next forward quantises every row. */
  void setOwnKernel(int device);
  bool ownKernel() const { return own_ != nullptr; }
  /** After a failed forward: the next one quantises every row. */
  void invalidate() { version_ = ~0ull; }

  /** The two halves of run, for timing the attention apart from the quantisation (runAttention). */
  void quantize(const bf16* q, const bf16* k, const bf16* v, int lq, int lk, int d, int qStride, int kvStride,
                cudaStream_t s);
  bool attendAndDequantize(bf16* o, int lq, int lk, int heads, int headDim, int oStride, float scale, cudaStream_t s);

  /** The device buffers' addresses (a captured CUDA graph holds them). */
  void addresses(std::vector<uintptr_t>& out) const;

 private:
  /** q into q8_ and rows [from, lk) of k and v into k8, v8 (the own kernel: v transposed into v8, rows of `pitch`
      bytes), with the scales in `sc`: q's found now, and k's and v's too when scaleKv (their largest value mapped to
      448 / kvHeadroom), else those `sc` holds. */
  void quantizeRows(const bf16* q, const bf16* k, const bf16* v, int lq, int lk, int d, int qStride, int kvStride, int from,
                    bool scaleKv, float kvHeadroom, float* sc, uint8_t* k8, uint8_t* v8, int pitch, cudaStream_t s);
  /** Quantised q8_ and this layer's k, v, then attention and the output back in bf16; slots: this call's scalars. */
  bool attend(const void* k8, const void* v8, int pitch, float* slots, bf16* o, int lq, int lk, int heads, int headDim,
              int oStride, float scale, cudaStream_t s);
  /** Bytes a row of transposed values takes for `rows` keys (the own kernel). */
  static int pitchFor(size_t rows) { return static_cast<int>((rows + 63) / 64 * 64); }

  CudnnSdpa* sdpa_;
  std::unique_ptr<HopperFp8Attention> own_;  // the own Hopper kernel; nullptr: cuDNN's
  DeviceBuffer q8_, k8_, v8_, o8_;  // E4M3, rows of d contiguous (o8_: one output per key run)
  DeviceBuffer stats_;              // the key runs' log-sum-exps when split
  DeviceBuffer scalars_;            // amaxes, scales and descales, one 16-byte slot each (see the .cu): run's, then each layer's
  std::vector<DeviceBuffer> layerK8_, layerV8_;  // runLayer: each layer's E4M3 keys and values, rows of d
  size_t layerRows_ = 0;                         // rows each of them holds
  uint64_t version_ = ~0ull;                     // the cache version and row count last quantised
  int cacheRows_ = -1;
  bool requantise_ = true;
};

}  // namespace ssn
