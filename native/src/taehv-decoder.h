// TAEHV's decoder (the tiny streaming video decoder for Wan2.1 latents, taew2_1) on the GPU: cuDNN convolutions on
// NHWC tensors (bf16 / fp16 with fp32 accumulation, or fp32), own kernels for the rest, each MemBlock's memory (its
// input one time step earlier) kept on the device between blocks. The layer order and the checkpoint's key names
// are those of tools/reference/taehv.py.
#pragma once
#include "streaming-decoder.h"
#include <memory>

namespace ssn {

struct TaehvDims {
  int latentChannels = 16, latentHeight = 0, latentWidth = 0;
  int channels[4] = {256, 128, 64, 64};
};

/** TAEHV on the StreamingDecoder interface. Weights: checkpoint keys `decoder.<i>...`; a TGrow weight with more
    rows than needed keeps its last rows (as upstream). finalize(warmupFrames) decodes one block of zeros. decode:
    latent [C, frames, H, W] -> 4 * frames frames, less the 3 leading frames of a stream's first block. reset
    forgets the MemBlocks' memory. planMs includes the fused-epilogue trials; describe: "cuDNN 9.19.0
    (libcudnn.so.9), bf16, fused bias+ReLU 19 of 22 convolutions". */
class TaehvDecoder : public StreamingDecoder {};

/** precision: 0 = bf16, 1 = fp32 (exact; tests), 2 = fp16. */
std::unique_ptr<TaehvDecoder> makeTaehvDecoder(const TaehvDims& dims, int device, int precision);

}  // namespace ssn
