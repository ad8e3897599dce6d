// cuDNN's fused attention (the backend API's SDPA forward operation, cuDNN >= 9.13) for the bf16 path.
// cuDNN is loaded at run time (dlopen), so the engine builds and runs without it: when it cannot be loaded,
// or has no plan for a shape, the caller uses the engine's own kernel (attention.h).
#pragma once
#include "common.h"
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace ssn {

class CudnnSdpa {
 public:
  /** One per engine (own handle and workspace: engines on one device may run on different threads). Returns
      nullptr when cuDNN is unavailable or SSN_ATTENTION=kernel; throws when SSN_ATTENTION=cudnn and it is. */
  static std::unique_ptr<CudnnSdpa> create(int device);
  ~CudnnSdpa();
  CudnnSdpa(const CudnnSdpa&) = delete;
  CudnnSdpa& operator=(const CudnnSdpa&) = delete;

  /** o = softmax(scale q kᵀ) v per head over keys k, v rows [0, lk); rows of heads * headDim with the given row
      strides (elements). Returns false (nothing launched) when cuDNN has no plan for this shape. */
  bool run(const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int heads, int headDim, int qStride,
           int kvStride, int oStride, float scale, cudaStream_t stream);

  /** "cuDNN 9.14.0 (libcudnn.so.9)", or why it is not used. */
  static std::string describe();
  /** Plans built so far by this instance and the milliseconds spent building them (first use of each shape). */
  int plansBuilt() const { return plansBuilt_; }
  double planMs() const { return planMs_; }

 private:
  explicit CudnnSdpa(void* handle) : handle_(handle) {}
  struct Plan {
    void* plan = nullptr;  // execution plan descriptor, or nullptr: cuDNN has no engine for this shape
    int64_t workspace = 0;
  };
  using Key = std::tuple<int, int, int, int, int, int, int>;
  Plan build(int lq, int lk, int heads, int headDim, int qStride, int kvStride, int oStride);

  void* handle_;
  std::map<Key, Plan> plans_;
  DeviceBuffer workspace_;
  int plansBuilt_ = 0;
  double planMs_ = 0;
};

}  // namespace ssn
