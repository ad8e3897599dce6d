// What both native video decoders (TAEHV: taehv-decoder.h, the Wan2.1 VAE: wan-vae-decoder.h) offer: latent
// blocks in, RGB24 frames out, their memory of the stream kept on the device between blocks. The C API
// (capi.cc) drives both through this interface; each header says what differs (weight keys, frame counts).
#pragma once
#include "common.h"
#include <mutex>
#include <string>

namespace ssn {

class StreamingDecoder {
 public:
  virtual ~StreamingDecoder() = default;
  std::mutex mutex;  // one call at a time (the C API takes it)

  virtual int device() const = 0;
  virtual int width() const = 0;
  virtual int height() const = 0;
  /** One weight under its checkpoint key, `count` float32 in PyTorch's layout, on the host or on this decoder's
      device. */
  virtual void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) = 0;
  /** Checks that every weight was given (names the first missing one) and gets ready. warmupFrames > 0: plans
      the convolutions on blocks of zeros of that many latent frames, then resets, so a stream pays none of it. */
  virtual void finalize(int warmupFrames) = 0;
  /** latent [channels, frames, H, W] float32 on the host -> RGB24 frames [n, 8H, 8W, 3] into out (capacity
      bytes); returns n. */
  virtual int decode(const float* latent, int frames, uint8_t* out, int64_t capacity) = 0;
  /** Forgets the stream: the next decode starts one. */
  virtual void reset() = 0;
  /** Convolution geometries planned, milliseconds spent choosing algorithms, device ms of the last decode
      (latent upload to frames on the host). */
  virtual void stats(int* plans, double* planMs, double* lastMs) const = 0;
  /** The last decode's device ms: [0] latent upload, [1] the network and the RGB24 conversion, [2] frames to the
      host. */
  virtual void lastSplit(double* ms) const = 0;
  /** "cuDNN 9.19.0 (libcudnn.so.9), bf16, ..." */
  virtual std::string describe() const = 0;
};

}  // namespace ssn
