// The Wan2.1 VAE's decoder (conv2 + Decoder3d of Wan2.1 `wan/modules/vae.py`) on the GPU, streaming: cuDNN
// convolutions on NHWC tensors (bf16 / fp16 with fp32 accumulation, or fp32), own kernels for RMS_norm (fp32
// statistics), SiLU, residual adds, nearest upsampling, the time doubling, the middle attention's softmax and the
// clamp to RGB24; the 32 causal convolutions' caches (the last two frames of each one's input) kept on the device
// between blocks. Layer order and key names are those of tools/reference/wan_vae.py (the published checkpoint's).
#pragma once
#include "streaming-decoder.h"
#include <memory>

namespace ssn {

struct WanVaeDims {
  int dim = 96;        // base width (Wan2.1: 96); widths dim * [4, 4, 4, 2, 1]
  int zDim = 16;       // latent channels
  int latentHeight = 0, latentWidth = 0;
};

/** The Wan VAE on the StreamingDecoder interface. Weights: checkpoint keys `conv2.*`, `decoder.*` (others, e.g. the
    encoder's, are ignored); `latent.mean` / `latent.std` ([zDim]) are the latent statistics undone before conv2
    (z * std + mean), without them the latent is used as is. finalize lays the weights out for the GPU and, with
    warmupFrames > 0, decodes a stream's first block and one later block of zeros. decode: latent [zDim, frames,
    H, W] -> 4 * frames frames, or 1 + 4 * (frames - 1) for a stream's first block. reset zeros the caches. */
class WanVaeDecoder : public StreamingDecoder {
 public:
  /** Device bytes held: weights, caches, scratch. */
  virtual int64_t deviceBytes() const = 0;
};

/** precision: 0 = bf16, 1 = fp32 (no TF32; tests), 2 = fp16. */
std::unique_ptr<WanVaeDecoder> makeWanVaeDecoder(const WanVaeDims& dims, int device, int precision);

}  // namespace ssn
