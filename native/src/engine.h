// The native engine: weights on the device, the K/V cache on the device, and the forward pass of
// docs/model.md. The host decides what the cache keeps (src/cache); the engine only applies its plans.
// Two storage precisions: bf16 (tensor cores; the fast path) and fp32 (exact arithmetic; tests).
#pragma once
#include "capi.h"
#include "common.h"
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ssn {

/** Profile phases (profileRead): patch+time, gemm, self-attention, cross-attention, norms/rope/elementwise, head. */
constexpr int kProfilePhases = 6;

/** Values of forwardStats: forwards, wall ms, issue ms, GPU ms, gap ms, graph launches, graph captures, graph
    fallback (1 once a capture failed and the engine went back to direct launches). */
constexpr int kForwardStats = 8;

/** A pipeline stage's hand-over: the hidden state [tokens, dim] fp32 between consecutive stages' layer ranges. */
struct StageIO {
  const float* hiddenIn = nullptr;  // device pointer on hiddenInDevice: the previous stage's output (not the first stage)
  int hiddenInDevice = 0;
  float* hiddenOut = nullptr;       // device pointer on this engine's device (all stages but the last)
};

/** denoiseSteps' buffers and stream on the engine's GPU, kept with the engine from block to block (denoise-steps.cu). */
struct DenoiseScratch {
  DeviceBuffer x, flow, noises, x0;
  cudaStream_t stream = nullptr;
  DenoiseScratch() = default;
  DenoiseScratch(const DenoiseScratch&) = delete;
  DenoiseScratch& operator=(const DenoiseScratch&) = delete;
  ~DenoiseScratch() {
    if (stream) cudaStreamDestroy(stream);
  }
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) = 0;
  virtual void finalize() = 0;
  virtual void setPrompt(const float* context) = 0;
  /** Returns the kept queries' id, or -1. */
  virtual int forward(const float* latent, int frames, const float* timesteps, const int32_t* framePos,
                      bool keepBlockKv, int keepQueries, float* flowOut, const StageIO& io = StageIO{}) = 0;
  /** The model layers [begin, end) this engine runs (a pipeline stage), all of them by default. Per-layer
      outputs (scores, cache reads) hold these layers only. */
  virtual void layers(int* begin, int* end) const = 0;
  virtual void updateCache(int rows, int terms, bool perLayer, const int32_t* sources, const float* weights,
                           const float* positions) = 0;
  virtual void scoreCache(int n, const int32_t* ids, const int32_t* frameStart, const int32_t* frameEnd, int reduce,
                          float* out) = 0;
  virtual void releaseQueries(int id) = 0;
  virtual void resetCache() = 0;
  virtual void readCache(float* keys, float* values, float* positions) = 0;
  virtual int cacheRows() const = 0;
  virtual int pendingRows() const = 0;
  virtual void setProfile(bool on) = 0;
  virtual void profileRead(double* ms) const = 0;
  virtual int device() const = 0;
  /** True when this engine got its weights, complete, from a live engine created with the same weights key:
      setWeight and finalize then do nothing (and the caller need not read the weights at all). */
  virtual bool weightsShared() const = 0;
  /** cuDNN attention plans built so far and the milliseconds they took (0, 0 without cuDNN). */
  virtual void attentionPlans(int* plans, double* ms) const = 0;
  /** Shapes whose cuDNN plan this engine found built by another engine of the process (0 without cuDNN). */
  virtual int attentionPlansReused() const { return 0; }
  /** Every forward's timing since the last reset, as sums (kForwardStats values, see capi.h ssn_forward_stats). */
  virtual void forwardStats(double* out, bool reset) {
    for (int i = 0; i < kForwardStats; i++) out[i] = 0;
    (void)reset;
  }
  /** CUDA graphs for repeated forward shapes: 0 off, 1 on. Engines that cannot use them ignore it. */
  virtual void setCudaGraphs(int mode) { (void)mode; }
  /** Self-attention's precision: 0 the engine's own (exact for its storage type), 1 FP8 (E4M3) through cuDNN's fused
      FP8 attention (bf16 engines with cuDNN only; throws otherwise). */
  virtual void setAttentionPrecision(int mode) {
    if (mode != 0) throw NativeError("FP8 attention needs the native engine's bf16 path (engine.dtype float16 or fp8)");
  }
  /** Self-attention's kernel on the bf16 path: 0 auto (exact attention on the own Hopper kernel where it runs: a Hopper
      GPU, head_dim 128; else cuDNN's fused attention, else the own FlashAttention-2-style kernel; FP8 attention on
      cuDNN's), 1 cuDNN (else, for exact attention, the own FA2-style kernel), 2 the own Hopper kernels for exact and FP8
      attention (throws where they cannot run). */
  virtual void setAttentionKernel(int mode) {
    if (mode == 2) throw NativeError("the Hopper attention kernel needs the native engine's bf16 path (engine.dtype float16 or fp8)");
  }
  /** What self-attention runs on: 0 the own FlashAttention-2-style kernel, 1 cuDNN, 2 the own Hopper kernels. */
  virtual int attentionKernel() const { return 0; }
  /** Precision of the products that read a normalised row (q/k/v, cross-attention's q, the FFN's two): 0 the storage
      type, 1 E4M3 with one scale per row of each operand (engine.dtype fp8: bf16 engines on Hopper or newer; throws
      otherwise). Quantises the weights once per weight set (now, or at finalize). */
  virtual void setProductPrecision(int mode) {
    if (mode != 0) throw NativeError("FP8 products need the native engine's bf16 path");
  }
  /** Whether forward() also takes `latent` and `flowOut` as pointers into this engine's GPU memory (a single-GPU
      engine of the whole model), so a caller can keep the latent there between forwards. */
  virtual bool takesDevicePointers() const { return false; }
  std::mutex mutex;
  DenoiseScratch denoiseScratch;
};

/** One stream's forward in a batched call (forwardBatch): the arguments of Engine::forward for `engine`. */
struct BatchForward {
  Engine* engine = nullptr;
  const float* latent = nullptr;
  int frames = 0;
  const float* timesteps = nullptr;
  const int32_t* framePos = nullptr;
  bool keepBlockKv = false;
  int keepQueries = 0;
  float* flowOut = nullptr;
  int queriesId = -1;  // out: the kept queries' id, or -1
};

/** Several streams' forwards as one: the token-wise work (modulation, norms, products, RoPE) over all their rows at
    once, attention per stream against its own cache and prompt. The engines must be distinct single-GPU engines of
    the whole model holding one weight set (one weights key), on one device; the caller holds every engine's mutex.
    Runs on the first engine's stream and workspace (a batch that repeats is replayed from one CUDA graph). */
void forwardBatch(std::vector<BatchForward>& items);

/** precision: 0 = bf16, 1 = fp32. */
/** weightsKey: non-empty = share weights with live engines of the same key, model, layers, precision and device
    (the key must name the weights' content: a file and its version, a synthetic seed). */
std::unique_ptr<Engine> makeEngine(const ssn_dims& dims, int device, int precision, int layerBegin = 0, int layerEnd = -1,
                                   const std::string& weightsKey = "");
/** Lets the current device read `peer`'s memory directly where the hardware allows (NVLink, PCIe P2P). */
void enablePeer(int peer);

}  // namespace ssn
