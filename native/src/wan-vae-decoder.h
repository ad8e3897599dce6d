// The Wan2.1 VAE's decoder (conv2 + Decoder3d of Wan2.1 `wan/modules/vae.py`) on the GPU, streaming: cuDNN
// convolutions on NHWC tensors (bf16 / fp16 with fp32 accumulation, or fp32), own kernels for RMS_norm (fp32
// statistics), SiLU, residual adds, nearest upsampling, the time doubling, the middle attention's softmax and the
// clamp to RGB24; the 32 causal convolutions' caches (the last two frames of each one's input) kept on the device
// between blocks. Layer order and key names are those of tools/reference/wan_vae.py (the published checkpoint's).
#pragma once
#include "common.h"
#include <memory>
#include <mutex>
#include <string>

namespace ssn {

struct WanVaeDims {
  int dim = 96;        // base width (Wan2.1: 96); widths dim * [4, 4, 4, 2, 1]
  int zDim = 16;       // latent channels
  int latentHeight = 0, latentWidth = 0;
};

class WanVaeDecoder {
 public:
  virtual ~WanVaeDecoder() = default;
  std::mutex mutex;  // one call at a time (the C API takes it)

  virtual int device() const = 0;
  virtual int width() const = 0;
  virtual int height() const = 0;
  /** One weight under its checkpoint key (`conv2.*`, `decoder.*`; other keys, e.g. the encoder's, are ignored),
      `count` float32 in PyTorch's layout, on the host or on this decoder's device. `latent.mean` / `latent.std`
      ([zDim]) are the latent statistics undone before conv2 (z * std + mean); without them the latent is used as is. */
  virtual void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) = 0;
  /** Checks that every weight was given (names the first missing one) and lays them out for the GPU. warmupFrames
      > 0: decodes a stream's first block and one later block of that many latent frames of zeros (choosing the
      convolution algorithms for those geometries), then resets, so a stream pays none of it. */
  virtual void finalize(int warmupFrames) = 0;
  /** latent [zDim, frames, H, W] float32 on the host -> RGB24 frames [n, 8H, 8W, 3] into out (capacity bytes);
      returns n: 4 * frames, or 1 + 4 * (frames - 1) for a stream's first block. */
  virtual int decode(const float* latent, int frames, uint8_t* out, int64_t capacity) = 0;
  /** Zeros the caches: the next decode starts a stream. */
  virtual void reset() = 0;
  /** Convolution geometries planned, milliseconds spent choosing algorithms, device ms of the last decode. */
  virtual void stats(int* plans, double* planMs, double* lastMs) const = 0;
  /** The last decode's device ms: [0] latent upload, [1] the network and the RGB24 conversion, [2] frames to the
      host. */
  virtual void lastSplit(double* ms) const = 0;
  /** Device bytes held: weights, caches, scratch. */
  virtual int64_t deviceBytes() const = 0;
  /** "cuDNN 9.19.0 (libcudnn.so.9), bf16, ..." */
  virtual std::string describe() const = 0;
};

/** precision: 0 = bf16, 1 = fp32 (no TF32; tests), 2 = fp16. */
std::unique_ptr<WanVaeDecoder> makeWanVaeDecoder(const WanVaeDims& dims, int device, int precision);

}  // namespace ssn
