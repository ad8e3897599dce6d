// The device time of one decode, from four events on the decoder's stream: ms[0] the latent's upload, ms[1] the
// network and the RGB24 conversion, ms[2] the frames' copy to the host; and the whole. Shared by the TAEHV and
// Wan VAE decoders.
#pragma once
#include "common.h"

namespace ssn {

class DecodeTimer {
 public:
  DecodeTimer() = default;
  DecodeTimer(const DecodeTimer&) = delete;
  DecodeTimer& operator=(const DecodeTimer&) = delete;
  ~DecodeTimer() {
    for (cudaEvent_t e : {start_, uploaded_, computed_, stop_})
      if (e) cudaEventDestroy(e);
  }

  /** Creates the events, on the current device. */
  void create() {
    for (cudaEvent_t* e : {&start_, &uploaded_, &computed_, &stop_}) CUDA_CHECK(cudaEventCreate(e));
  }
  /** Before the latent's upload is queued. */
  void started(cudaStream_t stream) { CUDA_CHECK(cudaEventRecord(start_, stream)); }
  /** After it is queued (and whatever the decoder counts with it). */
  void uploaded(cudaStream_t stream) { CUDA_CHECK(cudaEventRecord(uploaded_, stream)); }
  /** After the network is queued: copies `bytes` of frames from the device to `host`, waits for the stream and
      reads the times. */
  void finish(cudaStream_t stream, void* host, const void* device, size_t bytes) {
    CUDA_CHECK(cudaEventRecord(computed_, stream));
    CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaEventRecord(stop_, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    lastMs_ = ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start_, uploaded_));
    split_[0] = ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, uploaded_, computed_));
    split_[1] = ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, computed_, stop_));
    split_[2] = ms;
  }

  double lastMs() const { return lastMs_; }
  void lastSplit(double* ms) const {
    for (int i = 0; i < 3; i++) ms[i] = split_[i];
  }

 private:
  cudaEvent_t start_ = nullptr, uploaded_ = nullptr, computed_ = nullptr, stop_ = nullptr;
  double lastMs_ = 0;
  double split_[3] = {0, 0, 0};
};

}  // namespace ssn
