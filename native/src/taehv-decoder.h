// TAEHV's decoder (the tiny streaming video decoder for Wan2.1 latents, taew2_1) on the GPU: cuDNN convolutions on
// NHWC tensors (bf16 / fp16 with fp32 accumulation, or fp32), own kernels for the rest, each MemBlock's memory (its
// input one time step earlier) kept on the device between blocks. The layer order and the checkpoint's key names
// are those of tools/reference/taehv.py.
#pragma once
#include "common.h"
#include <memory>
#include <mutex>
#include <string>

namespace ssn {

struct TaehvDims {
  int latentChannels = 16, latentHeight = 0, latentWidth = 0;
  int channels[4] = {256, 128, 64, 64};
};

class TaehvDecoder {
 public:
  virtual ~TaehvDecoder() = default;
  std::mutex mutex;  // one call at a time (the C API takes it)

  virtual int device() const = 0;
  virtual int width() const = 0;
  virtual int height() const = 0;
  /** One weight under its checkpoint key (`decoder.<i>...`), `count` float32 in PyTorch's layout, on the host or
      on this decoder's device. A TGrow weight with more rows than needed keeps its last rows (as upstream). */
  virtual void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) = 0;
  /** Checks that every weight was given (names the first missing one). warmupFrames > 0: chooses the convolution
      algorithms for blocks of that many latent frames and decodes one such block of zeros, then resets, so the
      stream's first block pays none of it. */
  virtual void finalize(int warmupFrames) = 0;
  /** latent [C, frames, H, W] float32 on the host -> RGB24 frames [n, 8H, 8W, 3] into out (capacity bytes);
      returns n: 4 * frames, less the 3 leading frames of a stream's first block. */
  virtual int decode(const float* latent, int frames, uint8_t* out, int64_t capacity) = 0;
  /** Forgets the memory: the next decode starts a stream. */
  virtual void reset() = 0;
  /** Convolution geometries planned, milliseconds spent choosing algorithms (and fused-epilogue trials), device
      milliseconds of the last decode (latent upload to frames on the host). */
  virtual void stats(int* plans, double* planMs, double* lastMs) const = 0;
  /** The last decode's device milliseconds: ms[0] latent upload (and clamp), ms[1] the network and the RGB24
      conversion, ms[2] frames to the host. */
  virtual void lastSplit(double* ms) const = 0;
  /** "cuDNN 9.19.0 (libcudnn.so.9), bf16, fused bias+ReLU 19 of 22 convolutions". */
  virtual std::string describe() const = 0;
};

/** precision: 0 = bf16, 1 = fp32 (exact; tests), 2 = fp16. */
std::unique_ptr<TaehvDecoder> makeTaehvDecoder(const TaehvDims& dims, int device, int precision);

}  // namespace ssn
