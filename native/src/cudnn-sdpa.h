// cuDNN's fused attention: the backend API's SDPA forward operation (cuDNN >= 9.13) for the bf16 path, and the
// FP8 (E4M3) graph of matmuls, softmax and scale factors that its fused FP8 engine runs (Hopper and newer).
// cuDNN is loaded at run time (dlopen), so the engine builds and runs without it: when it cannot be loaded,
// or has no plan for a shape, the caller uses the engine's own kernel (attention.h).
#pragma once
#include "common.h"
#include "key-split.h"
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace ssn {

/** The plans of one device, built once per shape and shared by every engine of the process on that device (one
    cuDNN handle; executes are serialised on its mutex, so the handle's stream is the caller's while it launches). */
struct SdpaDevicePlans;
/** One cuDNN execution plan and its workspace size. */
struct SdpaPlan;

/** FP8 attention's device operands: q, k, v, o in E4M3 (rows of heads * headDim with the run's strides); every
    scalar one float on the device, 16-byte aligned. Real values are stored ones times the descale; o is written as
    the real output times scaleO; amaxS, amaxO receive the largest |P| and |O| (before scaleO). */
struct Fp8Operands {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  const float* descaleQ;
  const float* descaleK;
  const float* descaleV;
  const float* descaleS;  // 1 / scaleS
  const float* scaleS;    // the softmax probabilities' scale into E4M3
  const float* scaleO;
  float* amaxS;
  float* amaxO;
  float* stats;  // with keys split: the runs' log-sum-exps [splits, heads, lq] (fp32); unused otherwise
};

class CudnnSdpa {
 public:
  /** One per engine (own workspace: engines on one device may run on different threads and streams); the plans and
      the cuDNN handle are the device's, shared. Returns nullptr when cuDNN is unavailable or SSN_ATTENTION=kernel;
      throws when SSN_ATTENTION=cudnn and it is. */
  static std::unique_ptr<CudnnSdpa> create(int device);
  ~CudnnSdpa();
  CudnnSdpa(const CudnnSdpa&) = delete;
  CudnnSdpa& operator=(const CudnnSdpa&) = delete;

  /** o = softmax(scale q kᵀ) v per head over keys k, v rows [0, lk); rows of heads * headDim with the given row
      strides (elements). Returns false (nothing launched) when cuDNN has no plan for this shape. Keys are cut into
      splitsFor() runs attended as one batched call and merged (key-split.h); where cuDNN has no plan for that, whole. */
  bool run(const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int heads, int headDim, int qStride,
           int kvStride, int oStride, float scale, cudaStream_t stream);

  /** The same in FP8 (Fp8Operands; strides multiples of 16 elements), the keys cut into `splits` runs: t.o then
      receives the runs' partial outputs [splits, lq, heads * headDim] (oStride ignored) and t.stats their
      log-sum-exps, for the caller to merge. Returns false (nothing launched) when cuDNN has no FP8 plan for this shape
      and split on this device. */
  bool runFp8(const Fp8Operands& t, int splits, int lq, int lk, int heads, int headDim, int qStride, int kvStride,
              int oStride, float scale, cudaStream_t stream);

  /** How many runs of keys a call of this shape is cut into (keySplits on this GPU, or SSN_ATTENTION_SPLIT). */
  int splitsFor(int lq, int lk, int heads, int headDim) const;

  /** "cuDNN 9.14.0 (libcudnn.so.9)", or why it is not used. */
  static std::string describe();
  /** Plans built so far by this instance (shapes no engine of the device had built before) and the milliseconds
      spent building them; plansReused: shapes this instance found built by another engine. */
  int plansBuilt() const { return plansBuilt_; }
  double planMs() const { return planMs_; }
  int plansReused() const { return plansReused_; }
  /** The buffers the launches use: workspace, split partials and statistics (a captured CUDA graph holds them). */
  void addresses(std::vector<uintptr_t>& out) const;

 private:
  CudnnSdpa(SdpaDevicePlans* device, int sms) : device_(device), sms_(sms) {}
  enum PlanKind { kPlanBf16 = 0, kPlanFp8 = 1 };
  /** The device's plan for the kind and shape, built on first use (caller holds the device's mutex); nullptr: none. */
  SdpaPlan* planFor(int kind, int splits, int lq, int lk, int heads, int headDim, int qStride, int kvStride, int oStride);
  /** Runs the plan (on the shape's first run under SSN_SDPA_PROBE, its candidates timed first). */
  void execute(SdpaPlan& p, int n, const int64_t* uids, void* const* ptrs, cudaStream_t stream);
  void launch(void* plan, int64_t workspace, int n, const int64_t* uids, void* const* ptrs, cudaStream_t stream);
  void probe(SdpaPlan& p, int n, const int64_t* uids, void* const* ptrs, cudaStream_t stream);

  SdpaDevicePlans* device_;  // process-wide, never freed (outlives every engine)
  int sms_;
  std::set<std::tuple<int, int, int, int, int, int, int, int, int>> seen_;  // kinds, splits and shapes this instance has run
  DeviceBuffer workspace_;
  KeySplitScratch split_;  // bf16 split calls' partial outputs and log-sum-exps
  int plansBuilt_ = 0;
  double planMs_ = 0;
  int plansReused_ = 0;
};

}  // namespace ssn
