#include "engine.h"
#include "attention.h"
#include "cudnn-sdpa.h"
#include "fp8-attention.h"
#include "hopper-attention.h"
#include "gemm.h"
#include "kernels.h"
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <type_traits>
#include <vector>

namespace ssn {

/** Bytes of one stored element. */
#define ES sizeof(T)

template <typename T>
struct LayerWeights {
  T *qkv, *o, *cq, *ck, *cv, *co, *ffn1, *ffn2;  // [out, in]
  float *qkvBias, *oBias, *cqBias, *ckBias, *cvBias, *coBias, *ffn1Bias, *ffn2Bias;
  float *normQ, *normK, *cNormQ, *cNormK, *norm3W, *norm3B, *modulation;  // modulation [6, d]
  T* ffn1BiasLow;  // bf16 engines: ffn1Bias in bf16, for the product's GELU epilogue (cuBLASLt takes it in bf16)
};

/** A weight matrix [out, in] in E4M3 for FP8 products: each output feature's row scaled to its largest magnitude,
    scale [out] the factor back. */
struct Fp8Matrix {
  uint8_t* w = nullptr;
  float* scale = nullptr;
};
/** The products that read a normalised row or the FFN's hidden row (the two after attention read its bf16 output and
    stay bf16: quantising that output would cost about what FP8 saves on them). */
struct Fp8LayerWeights {
  Fp8Matrix qkv, cq, ffn1, ffn2;
};

/** Queries kept by a forward for participative-compression scores: [layers, rows, d], RoPE'd. */
struct KeptQueries {
  std::unique_ptr<DeviceBuffer> q;
  int rows = 0, frames = 0;
};

/**
 * An engine's weights on its device (and its RoPE tables). Engines of the same model, layers and precision on
 * one device share one set when their caller names it with the same key (one copy for many streams).
 */
template <typename T>
struct WeightSet {
  struct Slot {
    void* dst;
    size_t count;
    bool lowPrecision;  // stored in the engine's storage type T (else fp32)
  };
  explicit WeightSet(int dev) : device(dev) {}
  ~WeightSet() {
    cudaSetDevice(device);
    for (void* p : allocations) cudaFree(p);
  }
  WeightSet(const WeightSet&) = delete;
  WeightSet& operator=(const WeightSet&) = delete;
  void* alloc(size_t bytes) {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, bytes));
    allocations.push_back(p);
    return p;
  }

  int device;
  std::vector<void*> allocations;
  std::map<std::string, Slot> slots;
  std::set<std::string> given;
  bool finalized = false;
  std::vector<LayerWeights<T>> layers;  // the model's layers; only this stage's are filled
  std::vector<Fp8LayerWeights> fp8;     // FP8 copies (engine.dtype fp8), made by the first engine that asks; else empty
  std::mutex fp8Mutex;
  T *patchW, *text0W, *text2W, *headW;
  float *patchB, *text0B, *text2B, *headB, *headMod;
  float *time0W, *time0B, *time2W, *time2B, *projW, *projB;
  RopeParams rope{};
};

std::mutex& weightRegistryMutex() {
  static std::mutex m;
  return m;
}
/** Finalized weight sets by key, for engines created later (weak: a set lives as long as an engine uses it). */
template <typename T>
std::map<std::string, std::weak_ptr<WeightSet<T>>>& weightRegistry() {
  static std::map<std::string, std::weak_ptr<WeightSet<T>>> r;
  return r;
}

template <typename T>
class EngineImpl;

/** One stream's rows in a forward: whose cache and prompt they attend to, and where they sit among the forward's rows
    and frames (a batched forward concatenates its streams'). */
template <typename T>
struct Segment {
  EngineImpl<T>* owner = nullptr;
  const float* latent = nullptr;
  const float* timesteps = nullptr;
  const int32_t* framePos = nullptr;
  float* flowOut = nullptr;
  int frames = 0, rows = 0;
  int frameOff = 0, rowOff = 0;  // set by runSegments
  int cacheRows = 0, blockOff = 0;  // the owner's cache rows attended to, and where the block's rows go
  bool keepBlockKv = false;
  KeptQueries* kept = nullptr;
  int queriesId = -1;
};

template <typename T>
class EngineImpl final : public Engine {
 public:
  EngineImpl(const ssn_dims& dims, int device, int layerBegin, int layerEnd, const std::string& weightsKey);
  ~EngineImpl() override;
  void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) override;
  void finalize() override;
  void setPrompt(const float* context) override;
  int forward(const float* latent, int frames, const float* timesteps, const int32_t* framePos, bool keepBlockKv,
              int keepQueries, float* flowOut, const StageIO& io) override;
  /** The forwards of `items` (engines sharing this one's weights, this one first) as one; see forwardBatch. */
  void forwardMany(std::vector<BatchForward>& items);
  bool takesDevicePointers() const override { return lb_ == 0 && le_ == dims_.layers; }
  void layers(int* begin, int* end) const override { *begin = lb_; *end = le_; }
  void updateCache(int rows, int terms, bool perLayer, const int32_t* sources, const float* weights,
                   const float* positions) override;
  void scoreCache(int n, const int32_t* ids, const int32_t* frameStart, const int32_t* frameEnd, int reduce, float* out) override;
  void releaseQueries(int id) override;
  void resetCache() override;
  void readCache(float* keys, float* values, float* positions) override;
  int cacheRows() const override { return cacheRows_; }
  int pendingRows() const override { return pendingRows_; }
  void setProfile(bool on) override { profile_ = on; }
  void profileRead(double* ms) const override;
  void attentionPlans(int* plans, double* ms) const override {
    *plans = sdpa_ ? sdpa_->plansBuilt() : 0;
    *ms = sdpa_ ? sdpa_->planMs() : 0;
  }
  int attentionPlansReused() const override { return sdpa_ ? sdpa_->plansReused() : 0; }
  void forwardStats(double* out, bool reset) override {
    for (int i = 0; i < kForwardStats; i++) out[i] = stats_[i];
    if (reset) {
      for (int i = 0; i < kForwardStats - 1; i++) stats_[i] = 0;  // the fallback flag stays
      returnedOnce_ = false;  // the next forward's idle time would reach back before the reset
    }
  }
  void setCudaGraphs(int mode) override {
    graphsMode_ = mode;
    if (!mode) clearGraphs();
  }
  void setAttentionPrecision(int mode) override {
    if (mode != 0 && mode != 1) throw NativeError("attention precision must be 0 (exact) or 1 (fp8)");
    if (mode == 1) {
      if constexpr (!std::is_same_v<T, bf16>) {
        throw NativeError("FP8 attention needs the native engine's bf16 path (engine.dtype float16 or fp8)");
      } else {
        if (!sdpa_) throw NativeError("FP8 attention needs cuDNN's fused attention: " + CudnnSdpa::describe());
        requireHopper("FP8 attention");
        if (!fp8_) fp8_ = std::make_unique<Fp8Attention>(sdpa_.get());
        fp8_->setOwnKernel(ownFp8Device());
      }
    } else {
      fp8_.reset();
    }
    clearGraphs();
  }
  void setAttentionKernel(int mode) override {
    if (mode < 0 || mode > 2) throw NativeError("attention kernel must be 0 (auto), 1 (cudnn) or 2 (hopper)");
    if constexpr (!std::is_same_v<T, bf16>) {
      Engine::setAttentionKernel(mode);
    } else {
      const bool usable = hopperUsable();
      if (mode == 2 && !usable)
        throw NativeError("the Hopper attention kernel needs a Hopper GPU (compute capability 9.0), a build with sm_90a "
                          "and head_dim 128 (this model: " + std::to_string(dims_.dim / dims_.heads) + ")");
      if (mode == 1 || !usable) hopper_.reset();
      else if (!hopper_) hopper_ = std::make_unique<HopperAttention>(device_);
      attentionKernelMode_ = mode;
      if (fp8_) fp8_->setOwnKernel(ownFp8Device());
    }
    clearGraphs();
  }
  int attentionKernel() const override {
    if (fp8_) return fp8_->ownKernel() ? 2 : 1;
    return hopper_ ? 2 : sdpa_ ? 1 : 0;
  }
  void setProductPrecision(int mode) override {
    if (mode != 0 && mode != 1) throw NativeError("product precision must be 0 (the storage type) or 1 (fp8)");
    if (mode == 1) {
      if constexpr (!std::is_same_v<T, bf16>) {
        throw NativeError("FP8 products need the native engine's bf16 path (engine.dtype fp8 runs on bf16 storage)");
      } else {
        if (d_ % 16 || dims_.ffn_dim % 16)
          throw NativeError("FP8 products need dim and ffn_dim multiples of 16 (the E4M3 rows' 16-byte alignment), got " +
                            std::to_string(d_) + " and " + std::to_string(dims_.ffn_dim));
        if (dims_.ffn_dim > 16384)
          throw NativeError("FP8 products need ffn_dim at most 16384 (a hidden row quantised in one block), got " +
                            std::to_string(dims_.ffn_dim));
        requireHopper("FP8 products");
      }
    }
    fp8Products_ = mode == 1;
    if (fp8Products_ && w_->finalized) quantizeWeights();  // else finalize does
    clearGraphs();
  }
  int device() const override { return device_; }
  bool weightsShared() const override { return weightsShared_; }

 private:
  enum Phase { PhaseEmbed, PhaseGemm, PhaseSelfAttn, PhaseCrossAttn, PhaseElementwise, PhaseHead, PhaseCount };
  void mark(Phase ph);
  /** One stream's share of a forward on this engine's cache: checks, cache room, kept queries. */
  Segment<T> segmentFor(const float* latent, int frames, const float* timesteps, const int32_t* framePos, bool keepBlockKv,
                        int keepQueries, float* flowOut);
  /** The forward of `segs` (one stream's, or a batch's) on this engine's stream and workspace (sized by the caller). */
  void runSegments(std::vector<Segment<T>>& segs, const StageIO& io, std::chrono::steady_clock::time_point tEnter);
  /** Runs `body` (a forward's launches between its input copies and its output copy) on the stream: directly, or as
      a CUDA graph captured on the second forward of the same shape and buffers and replayed from the third on. */
  void launchBody(const std::vector<Segment<T>>& segs, int L, int frames, bool graphable, const std::function<void()>& body);
  void clearGraphs();
  void allocWeights();
  /** Throws "<what> needs a Hopper or newer GPU ..." on a GPU of compute capability below 9.0. */
  void requireHopper(const char* what) const {
    int major = 0, minor = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_));
    if (major < 9)
      throw NativeError(std::string(what) + " needs a Hopper or newer GPU (compute capability 9.0 or higher); cuda:" +
                        std::to_string(device_) + " is " + std::to_string(major) + "." + std::to_string(minor));
  }
  /** The FP8 copies of this stage's product weights in the weight set, unless an engine sharing it made them. */
  void quantizeWeights();
  void ensureCapacity(int rows);
  void ensureWorkspace(int tokens, int frames);
  // per-layer storage covers this stage's layers only; `layer` is the model's index
  T* layerRows(const DeviceBuffer& b, int layer) const { return b.as<T>() + (size_t)(layer - lb_) * cap_ * d_; }
  float* layerPos(int layer) const { return pos_.as<float>() + (size_t)(layer - lb_) * cap_ * 3; }
  bool inStage(const std::string& key) const;

  ssn_dims dims_;
  int device_;
  int lb_, le_, nl_;  // this engine's layers [lb_, le_) of the model (a pipeline stage; all of them by default)
  int d_, hd_, T_, gridW_, pf_, patchIn_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Gemm> gemm_;
  std::unique_ptr<CudnnSdpa> sdpa_;  // bf16 only; nullptr: the own kernel
  std::unique_ptr<Fp8Attention> fp8_;  // self-attention in FP8 (engine.attention fp8); nullptr: exact
  std::unique_ptr<HopperAttention> hopper_;  // exact attention on the own Hopper kernel; nullptr: cuDNN or the FA2 kernel
  int attentionKernelMode_ = 0;              // setAttentionKernel's: FP8 attention on the own kernel only when 2
  /** Whether the own Hopper kernel can run this engine's attention (a Hopper GPU, an sm_90a build, head_dim 128). */
  bool hopperUsable() const { return hopperAttentionAvailable(device_) && dims_.dim == dims_.heads * 128; }
  /** The device FP8 attention's own kernel runs on, or -1 for cuDNN's (engine.attentionKernel hopper only). */
  int ownFp8Device() const { return hopper_ && attentionKernelMode_ == 2 ? device_ : -1; }
  bool fp8Products_ = false;           // the products after the norms and in the FFN in E4M3 (engine.dtype fp8)
  /** selfAttention: the forward's attention over the owner's cache (FP8 when the owner's fp8_ is set) at `layer` of this
      engine's layers, not the prompt's. */
  void attention(const AttentionParams<T>& p, bool selfAttention = false, EngineImpl<T>* owner = nullptr, int layer = 0);
  std::shared_ptr<WeightSet<T>> w_;
  bool weightsShared_ = false;  // w_ came complete from another engine (setWeight / finalize do nothing)
  std::set<int> peers_;         // devices whose memory this one reads the hidden state from (peer access asked once)
  std::string weightsKey_;      // registry key once finalized ("" = not shared)

  // prompt
  DeviceBuffer ctxK_, ctxV_;  // [layers, textLen, d]
  bool hasPrompt_ = false;

  // cache: [layers, cap, d] T (kRaw un-rotated, kRot rotated at pos), pos [layers, cap, 3]
  DeviceBuffer kRaw_, kRot_, v_, pos_;
  int cap_ = 0, cacheRows_ = 0, pendingRows_ = 0;
  uint64_t cacheVersion_ = 0;  // changes whenever rows [0, cacheRows_) may have (FP8 attention keeps their E4M3 copy)
  // an update writes the new rows into these and then swaps them with kRaw_ / v_ (no copy back; costs one more
  // copy of the un-rotated keys and the values)
  DeviceBuffer nextK_, nextV_, updIdx_, updW_, updPos_;

  // workspaces
  int wsTokens_ = 0, wsFrames_ = 0;
  DeviceBuffer x_, y_, qkv_, q_, attn_, tmp_, ffnH_, patches_, flow_, latent_;
  DeviceBuffer y8_, y8Scale_, ffnH8_, ffnH8Scale_;  // FP8 products' operands: E4M3 rows and their factors
  DeviceBuffer tsteps_, framePos_, sinEmb_, temb1_, emb_, emb0_;
  DeviceBuffer staging_, scoreBuf_, qsum_, logits_;

  std::map<int, KeptQueries> kept_;
  std::vector<std::unique_ptr<DeviceBuffer>> keptPool_;
  int nextQueriesId_ = 1;

  bool profile_ = false;
  std::vector<std::pair<cudaEvent_t, Phase>> marks_;
  std::vector<cudaEvent_t> eventPool_;
  double profileMs_[PhaseCount] = {};

  // forwardStats: [0] forwards, [1] wall ms inside forward, [2] ms to issue its work, [3] GPU ms (input copies to
  // output copy, events), [4] idle ms before it (since the engine's previous call returned), [5] graph launches,
  // [6] graphs captured, [7] 1 once a capture failed (direct launches from then on)
  double stats_[kForwardStats] = {};
  cudaEvent_t fwdStart_ = nullptr, fwdEnd_ = nullptr;
  std::chrono::steady_clock::time_point lastReturn_{};
  bool returnedOnce_ = false;

  // CUDA graphs, keyed by the forward's shape and every buffer address its launches use; nullptr: seen once
  int graphsMode_ = 0;
  bool graphsBroken_ = false;
  std::map<std::vector<uintptr_t>, cudaGraphExec_t> graphs_;
  static constexpr size_t kMaxGraphs = 64;
  static_assert(PhaseCount == kProfilePhases, "engine.h names the profile phases");
};



template <typename T>
EngineImpl<T>::EngineImpl(const ssn_dims& dims, int device, int layerBegin, int layerEnd, const std::string& weightsKey)
    : dims_(dims), device_(device), lb_(layerBegin), le_(layerEnd < 0 ? dims.layers : layerEnd) {
  if (lb_ < 0 || lb_ >= le_ || le_ > dims.layers)
    throw NativeError("stage layers [" + std::to_string(layerBegin) + ", " + std::to_string(layerEnd) +
                      ") must be a non-empty range within the model's " + std::to_string(dims.layers) + " layers");
  nl_ = le_ - lb_;
  d_ = dims.dim;
  if (dims.heads <= 0 || d_ % dims.heads) throw NativeError("dim must be a multiple of heads");
  hd_ = d_ / dims.heads;
  const bool fp32 = std::is_same<T, float>::value;
  if (fp32 ? (hd_ % 2 || hd_ > 128) : (hd_ != 16 && hd_ != 32 && hd_ != 64 && hd_ != 128))
    throw NativeError(std::string("native engine (") + (fp32 ? "fp32" : "bf16") + ") supports head_dim " +
                      (fp32 ? "up to 128" : "16, 32, 64 or 128") + " (dim / heads), got " + std::to_string(hd_));
  if (d_ % 8 || dims.ffn_dim % 8 || dims.text_dim % 8)
    throw NativeError("dim, ffn_dim and text_dim must be multiples of 8");
  if (d_ > 8192) throw NativeError("dim must be at most 8192 (the row kernels hold a row in one block), got " + std::to_string(d_));
  if (dims.rope_split[0] + dims.rope_split[1] + dims.rope_split[2] != hd_ / 2)
    throw NativeError("rope_split must sum to head_dim / 2");
  const int pt = dims.patch[0], ph = dims.patch[1], pw = dims.patch[2];
  if (pt != 1) throw NativeError("native engine supports temporal patch 1 only");
  if (dims.latent_height % ph || dims.latent_width % pw) throw NativeError("latent size must be a multiple of the patch");
  gridW_ = dims.latent_width / pw;
  T_ = (dims.latent_height / ph) * gridW_;
  patchIn_ = dims.latent_channels * pt * ph * pw;
  pf_ = patchIn_;
  if (patchIn_ % 8) throw NativeError("latent_channels * patch volume must be a multiple of 8");
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    throw NativeError("engine.device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
                      " CUDA device(s))");
  CUDA_CHECK(cudaSetDevice(device_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreate(&fwdStart_));
  CUDA_CHECK(cudaEventCreate(&fwdEnd_));
  gemm_ = std::make_unique<Gemm>();
  if constexpr (std::is_same_v<T, bf16>) {
    sdpa_ = CudnnSdpa::create(device_);
    if (hopperUsable()) hopper_ = std::make_unique<HopperAttention>(device_);
  }
  if (!weightsKey.empty()) {
    // everything the weights' layout depends on, besides what the caller's key names
    weightsKey_ = weightsKey + "|device " + std::to_string(device_) + "|layers " + std::to_string(lb_) + "-" +
                  std::to_string(le_) + "|dims " + std::to_string(d_) + "," + std::to_string(dims.layers) + "," +
                  std::to_string(dims.heads) + "," + std::to_string(dims.ffn_dim) + "," + std::to_string(dims.freq_dim) +
                  "," + std::to_string(patchIn_) + "," + std::to_string(dims.text_dim) + "," + std::to_string(dims.rope_theta) +
                  "," + std::to_string(dims.rope_max_position) + "," + std::to_string(dims.rope_split[0]) + "," +
                  std::to_string(dims.rope_split[1]) + "," + std::to_string(dims.latent_height) + "," +
                  std::to_string(dims.latent_width);
    std::lock_guard<std::mutex> lock(weightRegistryMutex());
    auto it = weightRegistry<T>().find(weightsKey_);
    if (it != weightRegistry<T>().end()) w_ = it->second.lock();
    weightsShared_ = w_ != nullptr;
  }
  if (!w_) {
    w_ = std::make_shared<WeightSet<T>>(device_);
    allocWeights();
  }
}

template <typename T>
EngineImpl<T>::~EngineImpl() {
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_);
  for (auto& m : marks_) eventPool_.push_back(m.first);
  for (cudaEvent_t ev : eventPool_) cudaEventDestroy(ev);
  clearGraphs();
  if (fwdStart_) cudaEventDestroy(fwdStart_);
  if (fwdEnd_) cudaEventDestroy(fwdEnd_);
  gemm_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

template <typename T>
void EngineImpl<T>::allocWeights() {
  const size_t d = d_, ffn = dims_.ffn_dim, td = dims_.text_dim, fd = dims_.freq_dim;
  auto bf = [&](const std::string& key, size_t n) {
    auto* p = static_cast<T*>(w_->alloc(n * ES));
    w_->slots[key] = {p, n, true};
    return p;
  };
  auto f32 = [&](const std::string& key, size_t n) {
    auto* p = static_cast<float*>(w_->alloc(n * sizeof(float)));
    w_->slots[key] = {p, n, false};
    return p;
  };
  w_->patchW = bf("patch_embedding.weight", d * patchIn_);
  w_->patchB = f32("patch_embedding.bias", d);
  w_->text0W = bf("text_embedding.0.weight", d * td);
  w_->text0B = f32("text_embedding.0.bias", d);
  w_->text2W = bf("text_embedding.2.weight", d * d);
  w_->text2B = f32("text_embedding.2.bias", d);
  w_->time0W = f32("time_embedding.0.weight", d * fd);
  w_->time0B = f32("time_embedding.0.bias", d);
  w_->time2W = f32("time_embedding.2.weight", d * d);
  w_->time2B = f32("time_embedding.2.bias", d);
  w_->projW = f32("time_projection.1.weight", 6 * d * d);
  w_->projB = f32("time_projection.1.bias", 6 * d);
  w_->headW = bf("head.head.weight", (size_t)pf_ * d);
  w_->headB = f32("head.head.bias", pf_);
  w_->headMod = f32("head.modulation", 2 * d);
  w_->layers.resize(dims_.layers);
  for (int i = lb_; i < le_; i++) {
    LayerWeights<T>& L = w_->layers[i];
    const std::string b = "blocks." + std::to_string(i) + ".";
    // q, k, v live in one fused [3d, d] matrix (and one [3d] bias) so one product makes all three
    L.qkv = static_cast<T*>(w_->alloc(3 * d * d * ES));
    L.qkvBias = static_cast<float*>(w_->alloc(3 * d * sizeof(float)));
    const char* names[3] = {"q", "k", "v"};
    for (int j = 0; j < 3; j++) {
      w_->slots[b + "self_attn." + names[j] + ".weight"] = {L.qkv + j * d * d, d * d, true};
      w_->slots[b + "self_attn." + names[j] + ".bias"] = {L.qkvBias + j * d, d, false};
    }
    L.o = bf(b + "self_attn.o.weight", d * d);
    L.oBias = f32(b + "self_attn.o.bias", d);
    L.normQ = f32(b + "self_attn.norm_q.weight", d);
    L.normK = f32(b + "self_attn.norm_k.weight", d);
    L.cq = bf(b + "cross_attn.q.weight", d * d);
    L.cqBias = f32(b + "cross_attn.q.bias", d);
    L.ck = bf(b + "cross_attn.k.weight", d * d);
    L.ckBias = f32(b + "cross_attn.k.bias", d);
    L.cv = bf(b + "cross_attn.v.weight", d * d);
    L.cvBias = f32(b + "cross_attn.v.bias", d);
    L.co = bf(b + "cross_attn.o.weight", d * d);
    L.coBias = f32(b + "cross_attn.o.bias", d);
    L.cNormQ = f32(b + "cross_attn.norm_q.weight", d);
    L.cNormK = f32(b + "cross_attn.norm_k.weight", d);
    L.norm3W = f32(b + "norm3.weight", d);
    L.norm3B = f32(b + "norm3.bias", d);
    L.ffn1 = bf(b + "ffn.0.weight", ffn * d);
    L.ffn1Bias = f32(b + "ffn.0.bias", ffn);
    L.ffn2 = bf(b + "ffn.2.weight", d * ffn);
    L.ffn2Bias = f32(b + "ffn.2.bias", d);
    L.modulation = f32(b + "modulation", 6 * d);
  }

  // RoPE: per-pair frequency and a (cos, sin) table for integer positions, both computed in float64
  const int half = hd_ / 2;
  std::vector<double> freq(half);
  for (int j = 0; j < half; j++) {
    int part = j < dims_.rope_split[0] ? 0 : (j < dims_.rope_split[0] + dims_.rope_split[1] ? 1 : 2);
    int jj = part == 0 ? j : (part == 1 ? j - dims_.rope_split[0] : j - dims_.rope_split[0] - dims_.rope_split[1]);
    freq[j] = std::pow(dims_.rope_theta, -2.0 * jj / (2.0 * dims_.rope_split[part]));
  }
  const int tableLen = std::max(dims_.rope_max_position, std::max(dims_.latent_height, dims_.latent_width));
  std::vector<float2> table((size_t)tableLen * half);
  for (int p = 0; p < tableLen; p++)
    for (int j = 0; j < half; j++) {
      const double a = p * freq[j];
      table[(size_t)p * half + j] = make_float2(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
    }
  auto* dFreq = static_cast<double*>(w_->alloc(half * sizeof(double)));
  auto* dTable = static_cast<float2*>(w_->alloc(table.size() * sizeof(float2)));
  CUDA_CHECK(cudaMemcpy(dFreq, freq.data(), half * sizeof(double), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(dTable, table.data(), table.size() * sizeof(float2), cudaMemcpyHostToDevice));
  w_->rope = {dTable, dFreq, tableLen, half, dims_.rope_split[0], dims_.rope_split[0] + dims_.rope_split[1]};
}

template <typename T>
bool EngineImpl<T>::inStage(const std::string& key) const {
  if (key.rfind("blocks.", 0) != 0) return true;
  const int layer = std::atoi(key.c_str() + 7);
  return layer >= lb_ && layer < le_;
}

template <typename T>
void EngineImpl<T>::setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) {
  if (!inStage(key)) return;  // another stage's layer: the caller may hand every weight to every stage
  if (weightsShared_) return;  // complete already, and other engines read them
  auto it = w_->slots.find(key);
  if (it == w_->slots.end()) throw NativeError("unknown weight key '" + key + "'");
  const auto& s = it->second;
  if ((size_t)count != s.count)
    throw NativeError("weight '" + key + "' has " + std::to_string(count) + " elements, expected " + std::to_string(s.count));
  const float* src = data;
  if (!onDevice) {
    staging_.reserve(s.count * sizeof(float));
    CUDA_CHECK(cudaMemcpyAsync(staging_.ptr, data, s.count * sizeof(float), cudaMemcpyHostToDevice, stream_));
    src = staging_.as<float>();
  }
  if (s.lowPrecision) fromF32<T>(src, static_cast<T*>(s.dst), s.count, stream_);
  else CUDA_CHECK(cudaMemcpyAsync(s.dst, src, s.count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  w_->given.insert(key);
}

template <typename T>
void EngineImpl<T>::finalize() {
  if (weightsShared_) return;
  for (auto& kv : w_->slots)
    if (!w_->given.count(kv.first)) throw NativeError("weight '" + kv.first + "' was not given");
  if constexpr (std::is_same_v<T, bf16>) {  // only the bf16 path has the GELU epilogue
    for (int l = lb_; l < le_; l++) {
      LayerWeights<T>& Lw = w_->layers[l];
      if (!Lw.ffn1BiasLow) Lw.ffn1BiasLow = static_cast<T*>(w_->alloc((size_t)dims_.ffn_dim * ES));
      fromF32<T>(Lw.ffn1Bias, Lw.ffn1BiasLow, dims_.ffn_dim, stream_);
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  w_->finalized = true;
  if (fp8Products_) quantizeWeights();
  if (!weightsKey_.empty()) {
    std::lock_guard<std::mutex> lock(weightRegistryMutex());
    weightRegistry<T>()[weightsKey_] = w_;
  }
}

template <typename T>
void EngineImpl<T>::quantizeWeights() {
  if constexpr (std::is_same_v<T, bf16>) {
    std::lock_guard<std::mutex> lock(w_->fp8Mutex);
    if (!w_->fp8.empty()) return;
    std::vector<Fp8LayerWeights> layers(dims_.layers);
    const auto quantize = [&](const bf16* w, int out, int in) {
      Fp8Matrix m;
      m.w = static_cast<uint8_t*>(w_->alloc((size_t)out * in));
      m.scale = static_cast<float*>(w_->alloc((size_t)out * sizeof(float)));
      quantizeRowsE4m3(w, out, in, m.w, m.scale, stream_);
      return m;
    };
    const int d = d_, ffn = dims_.ffn_dim;
    for (int l = lb_; l < le_; l++) {
      const LayerWeights<T>& Lw = w_->layers[l];
      layers[l] = {quantize(Lw.qkv, 3 * d, d), quantize(Lw.cq, d, d), quantize(Lw.ffn1, ffn, d), quantize(Lw.ffn2, d, ffn)};
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    w_->fp8 = std::move(layers);
  }
}

template <typename T>
void EngineImpl<T>::ensureWorkspace(int tokens, int frames) {
  if (fp8Products_) {  // also after the engine's shapes were sized without them
    const size_t rows = std::max(tokens, wsTokens_);
    y8_.reserve(rows * d_);
    y8Scale_.reserve(rows * sizeof(float));
    ffnH8_.reserve(rows * dims_.ffn_dim);
    ffnH8Scale_.reserve(rows * sizeof(float));
  }
  if (tokens <= wsTokens_ && frames <= wsFrames_) return;
  wsTokens_ = std::max(tokens, wsTokens_);
  wsFrames_ = std::max(frames, wsFrames_);
  const size_t L = wsTokens_, F = wsFrames_, d = d_;
  x_.reserve(L * d * 4);
  y_.reserve(L * d * ES);
  qkv_.reserve(L * 3 * d * ES);
  q_.reserve(L * d * ES);
  attn_.reserve(L * d * ES);
  tmp_.reserve(L * std::max<size_t>(d, pf_) * 4);
  ffnH_.reserve(L * dims_.ffn_dim * ES);
  patches_.reserve(L * patchIn_ * ES);
  flow_.reserve(L * pf_ * 4);
  latent_.reserve(L * pf_ * 4);
  tsteps_.reserve(F * 4);
  framePos_.reserve(F * 4);
  sinEmb_.reserve(F * dims_.freq_dim * 4);
  temb1_.reserve(F * d * 4);
  emb_.reserve(F * d * 4);
  emb0_.reserve(F * 6 * d * 4);
}

template <typename T>
void EngineImpl<T>::ensureCapacity(int rows) {
  if (rows <= cap_) return;
  const int live = cacheRows_ + pendingRows_;
  int newCap = std::max(rows, cap_ + cap_ / 2);
  newCap = (newCap + 63) / 64 * 64;
  const size_t d = d_, layers = nl_;
  DeviceBuffer nk, nr, nv, np;
  nk.reserve(layers * newCap * d * ES);
  nr.reserve(layers * newCap * d * ES);
  nv.reserve(layers * newCap * d * ES);
  np.reserve(layers * newCap * 3 * 4);
  if (live > 0) {
    CUDA_CHECK(cudaMemcpy2DAsync(nk.ptr, newCap * d * ES, kRaw_.ptr, cap_ * d * ES, live * d * ES, layers, cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaMemcpy2DAsync(nr.ptr, newCap * d * ES, kRot_.ptr, cap_ * d * ES, live * d * ES, layers, cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaMemcpy2DAsync(nv.ptr, newCap * d * ES, v_.ptr, cap_ * d * ES, live * d * ES, layers, cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaMemcpy2DAsync(np.ptr, newCap * 3 * 4, pos_.ptr, cap_ * 3 * 4, live * 3 * 4, layers, cudaMemcpyDeviceToDevice, stream_));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::swap(kRaw_.ptr, nk.ptr); std::swap(kRaw_.bytes, nk.bytes);
  std::swap(kRot_.ptr, nr.ptr); std::swap(kRot_.bytes, nr.bytes);
  std::swap(v_.ptr, nv.ptr); std::swap(v_.bytes, nv.bytes);
  std::swap(pos_.ptr, np.ptr); std::swap(pos_.bytes, np.bytes);
  cap_ = newCap;
  cacheVersion_++;
}

template <typename T>
void EngineImpl<T>::setPrompt(const float* context) {
  if (!w_->finalized) throw NativeError("weights are not complete");
  const int tl = dims_.text_len, td = dims_.text_dim;
  const size_t d = d_;
  ctxK_.reserve((size_t)nl_ * tl * d * ES);
  ctxV_.reserve((size_t)nl_ * tl * d * ES);
  DeviceBuffer ctx, h1, h2, kTmp;
  ctx.reserve((size_t)tl * td * 4);
  h1.reserve((size_t)tl * td * ES + (size_t)tl * d * ES);
  h2.reserve((size_t)tl * d * ES);
  kTmp.reserve((size_t)tl * d * ES);
  CUDA_CHECK(cudaMemcpyAsync(ctx.ptr, context, (size_t)tl * td * 4, cudaMemcpyHostToDevice, stream_));
  T* ctxB = h1.as<T>();
  T* hid = ctxB + (size_t)tl * td;
  fromF32<T>(ctx.as<float>(), ctxB, (size_t)tl * td, stream_);
  gemm_->run(stream_, tl, d_, td, ctxB, w_->text0W, hid, dtypeOf<T>());
  biasAct(hid, w_->text0B, tl, d_, 1, stream_);
  T* emb = h2.as<T>();
  gemm_->run(stream_, tl, d_, d_, hid, w_->text2W, emb, dtypeOf<T>());
  biasAct(emb, w_->text2B, tl, d_, 0, stream_);
  for (int l = lb_; l < le_; l++) {
    const LayerWeights<T>& L = w_->layers[l];
    T* kDst = ctxK_.as<T>() + (size_t)(l - lb_) * tl * d;
    T* vDst = ctxV_.as<T>() + (size_t)(l - lb_) * tl * d;
    gemm_->run(stream_, tl, d_, d_, emb, L.ck, kTmp.ptr, dtypeOf<T>());
    rmsNormRows(kTmp.as<T>(), L.ckBias, L.cNormK, kDst, tl, d_, dims_.eps, stream_);
    gemm_->run(stream_, tl, d_, d_, emb, L.cv, vDst, dtypeOf<T>());
    biasAct(vDst, L.cvBias, tl, d_, 0, stream_);
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  hasPrompt_ = true;
}

template <typename T>
void EngineImpl<T>::mark(Phase ph) {
  if (!profile_) return;
  cudaEvent_t ev;
  if (eventPool_.empty()) CUDA_CHECK(cudaEventCreate(&ev));
  else { ev = eventPool_.back(); eventPool_.pop_back(); }
  CUDA_CHECK(cudaEventRecord(ev, stream_));
  marks_.emplace_back(ev, ph);
}

// Self-attention on the own Hopper kernel where the engine has one (engine.attentionKernel); else cuDNN's fused attention where it has a
// plan and the keys are one run of rows (the block right after the cache); otherwise the own FA2-style kernel. Both
// own kernels also read keys from two separate row segments.
template <typename T>
void EngineImpl<T>::attention(const AttentionParams<T>& p, bool selfAttention, EngineImpl<T>* owner, int layer) {
  if constexpr (std::is_same_v<T, bf16>) {
    const bool keysInOneRun = p.segB == 0 || p.segBOffset == p.segA;  // what the cuDNN paths read
    Fp8Attention* fp8 = selfAttention && owner ? owner->fp8_.get() : nullptr;
    if (fp8 && keysInOneRun) {
      if (fp8->runLayer(layer, p.q, p.k, p.v, p.o, p.Lq, p.segA + p.segB, p.segA, p.heads, p.headDim, p.qStride, p.kvStride,
                        p.oStride, p.scale, stream_))
        return;
      fp8->invalidate();
      throw NativeError("engine.attention fp8: cuDNN has no FP8 attention plan for " + std::to_string(p.Lq) +
                        " queries, " + std::to_string(p.segA + p.segB) + " keys, " + std::to_string(p.heads) + " heads of " +
                        std::to_string(p.headDim) + " (" + CudnnSdpa::describe() + "; FP8 attention needs Hopper or newer)");
    }
    // self-attention only: at the prompt's few hundred keys cuDNN is faster (H200: 6.1 against 8.4 ms a block)
    if (hopper_ && selfAttention && HopperAttention::supports(p)) return hopper_->run(p, stream_);
    if (sdpa_ && keysInOneRun &&
        sdpa_->run(p.q, p.k, p.v, p.o, p.Lq, p.segA + p.segB, p.heads, p.headDim, p.qStride, p.kvStride, p.oStride,
                   p.scale, stream_))
      return;
  }
  flashAttention(p, stream_);
}

template <typename T>
void EngineImpl<T>::profileRead(double* ms) const {
  for (int i = 0; i < PhaseCount; i++) ms[i] = profileMs_[i];
}

template <typename T>
Segment<T> EngineImpl<T>::segmentFor(const float* latent, int frames, const float* timesteps, const int32_t* framePos,
                                     bool keepBlockKv, int keepQueries, float* flowOut) {
  if (!w_->finalized) throw NativeError("weights are not complete");
  if (!hasPrompt_) throw NativeError("setPrompt must be called before forward");
  if (frames <= 0) throw NativeError("a block needs at least one frame");
  Segment<T> s{};
  s.owner = this;
  s.latent = latent; s.timesteps = timesteps; s.framePos = framePos; s.flowOut = flowOut;
  s.frames = frames;
  s.rows = frames * T_;
  s.keepBlockKv = keepBlockKv;
  s.cacheRows = cacheRows_;
  s.blockOff = keepBlockKv ? cacheRows_ : cacheRows_ + pendingRows_;
  ensureCapacity(s.blockOff + s.rows);
  if (keepQueries) {
    KeptQueries k;
    const size_t need = (size_t)nl_ * s.rows * d_ * ES;
    for (size_t i = 0; i < keptPool_.size(); i++)
      if (keptPool_[i]->bytes >= need) {
        k.q = std::move(keptPool_[i]);
        keptPool_.erase(keptPool_.begin() + i);
        break;
      }
    if (!k.q) {
      k.q = std::make_unique<DeviceBuffer>();
      k.q->reserve(need);
    }
    k.rows = s.rows;
    k.frames = frames;
    s.queriesId = nextQueriesId_++;
    s.kept = &(kept_[s.queriesId] = std::move(k));
  }
  return s;
}

template <typename T>
int EngineImpl<T>::forward(const float* latent, int frames, const float* timesteps, const int32_t* framePos, bool keepBlockKv,
                    int keepQueries, float* flowOut, const StageIO& io) {
  const auto tEnter = std::chrono::steady_clock::now();
  const bool firstStage = lb_ == 0, lastStage = le_ == dims_.layers;
  if (!firstStage && !io.hiddenIn) throw NativeError("a stage after the first needs the previous stage's hidden state");
  if (!lastStage && !io.hiddenOut) throw NativeError("a stage before the last needs a buffer for its hidden state");
  if (frames <= 0) throw NativeError("a block needs at least one frame");
  ensureWorkspace(frames * T_, frames);
  std::vector<Segment<T>> segs{segmentFor(latent, frames, timesteps, framePos, keepBlockKv, keepQueries, flowOut)};
  runSegments(segs, io, tEnter);
  return segs[0].queriesId;
}

template <typename T>
void EngineImpl<T>::forwardMany(std::vector<BatchForward>& items) {
  const auto tEnter = std::chrono::steady_clock::now();
  std::vector<EngineImpl<T>*> owners;
  for (size_t i = 0; i < items.size(); i++) {
    auto* e = dynamic_cast<EngineImpl<T>*>(items[i].engine);
    const std::string which = "forwardBatch: item " + std::to_string(i);
    if (!e) throw NativeError(which + ": the engine is over several GPUs or of another precision than the first");
    if (e->w_ != w_) throw NativeError(which + ": the engine does not share the first engine's weights (create them with one weights key)");
    if (e->device_ != device_) throw NativeError(which + ": the engine is on another device than the first");
    if (e->lb_ != 0 || e->le_ != dims_.layers) throw NativeError(which + ": the engine is a pipeline stage");
    if (e->fp8Products_ != fp8Products_)
      throw NativeError(which + ": the engine's products are in another precision than the first's (engine.dtype)");
    for (EngineImpl<T>* o : owners)
      if (o == e) throw NativeError(which + ": the engine is in the batch twice (a stream has one forward at a time)");
    owners.push_back(e);
  }
  int totalRows = 0, totalFrames = 0;
  for (const BatchForward& b : items) {
    if (b.frames <= 0) throw NativeError("forwardBatch: a block needs at least one frame");
    totalRows += b.frames * T_;
    totalFrames += b.frames;
  }
  ensureWorkspace(totalRows, totalFrames);
  std::vector<Segment<T>> segs;
  for (size_t i = 0; i < items.size(); i++) {
    const BatchForward& b = items[i];
    segs.push_back(owners[i]->segmentFor(b.latent, b.frames, b.timesteps, b.framePos, b.keepBlockKv, b.keepQueries, b.flowOut));
  }
  runSegments(segs, StageIO{}, tEnter);
  for (size_t i = 0; i < items.size(); i++) items[i].queriesId = segs[i].queriesId;
}

template <typename T>
void EngineImpl<T>::runSegments(std::vector<Segment<T>>& segs, const StageIO& io,
                                std::chrono::steady_clock::time_point tEnter) {
  const bool firstStage = lb_ == 0, lastStage = le_ == dims_.layers;
  int L = 0, frames = 0;
  for (Segment<T>& s : segs) {
    s.rowOff = L;
    s.frameOff = frames;
    L += s.rows;
    frames += s.frames;
  }
  const size_t d = d_;
  const int C = dims_.latent_channels, H = dims_.latent_height, W = dims_.latent_width;
  const size_t frameSize = (size_t)C * H * W;  // floats of one latent (or flow) frame
  bool anyKept = false;
  for (const Segment<T>& s : segs) anyKept = anyKept || s.kept;

  if (profile_) {
    for (auto& m : marks_) eventPool_.push_back(m.first);
    marks_.clear();
  }
  mark(PhaseEmbed);
  CUDA_CHECK(cudaEventRecord(fwdStart_, stream_));
  // inputs, into the fixed device buffers the launches (or a captured graph) read; each stream's at its frames' offset
  for (const Segment<T>& s : segs) {
    if (firstStage)
      CUDA_CHECK(cudaMemcpyAsync(latent_.as<float>() + frameSize * s.frameOff, s.latent, frameSize * s.frames * 4,
                                 cudaMemcpyDefault, stream_));  // from the host, or from this GPU (takesDevicePointers)
    CUDA_CHECK(cudaMemcpyAsync(tsteps_.as<float>() + s.frameOff, s.timesteps, s.frames * 4, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaMemcpyAsync(framePos_.as<int>() + s.frameOff, s.framePos, s.frames * 4, cudaMemcpyHostToDevice, stream_));
  }
  for (const Segment<T>& s : segs)
    if (s.owner->fp8_) s.owner->fp8_->beginForward(s.owner->cacheVersion_, s.cacheRows, s.blockOff + s.rows, nl_, d_);
  const auto body = [&] {
  // time embedding (fp32), one row per frame of every stream: e = Linear(SiLU(Linear(sin))), e0 = Linear(SiLU(e))
  sinusoid(tsteps_.as<float>(), sinEmb_.as<float>(), frames, dims_.freq_dim, stream_);
  smallLinear(sinEmb_.as<float>(), w_->time0W, w_->time0B, temb1_.as<float>(), frames, d_, dims_.freq_dim, 0, stream_);
  smallLinear(temb1_.as<float>(), w_->time2W, w_->time2B, emb_.as<float>(), frames, d_, d_, 1, stream_);
  smallLinear(emb_.as<float>(), w_->projW, w_->projB, emb0_.as<float>(), frames, 6 * d_, d_, 1, stream_);
  // patch embedding (first stage), or the previous stage's hidden state
  if (firstStage) {
    for (const Segment<T>& s : segs)
      patchify(latent_.as<float>() + frameSize * s.frameOff, patches_.as<T>() + (size_t)s.rowOff * patchIn_, C, s.frames, H,
               W, dims_.patch[0], dims_.patch[1], dims_.patch[2], stream_);
    gemm_->run(stream_, L, d_, patchIn_, patches_.as<T>(), w_->patchW, tmp_.ptr, DType::F32);
  } else if (io.hiddenInDevice == device_) {
    CUDA_CHECK(cudaMemcpyAsync(x_.ptr, io.hiddenIn, (size_t)L * d * 4, cudaMemcpyDeviceToDevice, stream_));
  } else {
    if (peers_.insert(io.hiddenInDevice).second) enablePeer(io.hiddenInDevice);
    CUDA_CHECK(cudaMemcpyPeerAsync(x_.ptr, device_, io.hiddenIn, io.hiddenInDevice, (size_t)L * d * 4, stream_));
  }

  // Token-wise work runs over all L rows at once: row r belongs to frame r / tokensPerFrame of the concatenated
  // frames, whose time embedding (and so modulation) is its own stream's.
  float* x = x_.as<float>();
  T* y = y_.as<T>();
  float* tmp = tmp_.as<float>();
  const float* e0 = emb0_.as<float>();
  auto modv = [&](const LayerWeights<T>& Lw, int k) { return ModVec{Lw.modulation + k * d, e0 + k * d, 6 * d_}; };
  // FP8 products: the norms write E4M3 rows for the products that read them (the head's stays bf16)
  const bool fp8 = fp8Products_;
  if (fp8 && w_->fp8.empty()) throw NativeError("FP8 products: the weights were not quantised (finalize first)");
  uint8_t* y8 = y8_.as<uint8_t>();
  float* y8Scale = y8Scale_.as<float>();
  const auto normOut = [&](ResidualNormParams<T>& r) {
    if (!fp8) return;
    r.y = nullptr;
    r.y8 = y8;
    r.y8Scale = y8Scale;
  };
  // out = y . W^T from the last norm's output, in E4M3 when fp8
  const auto fromNorm = [&](int N, const T* Wb, const Fp8Matrix& W8, void* out, DType outType) {
    if (fp8) gemm_->runFp8(stream_, L, N, d_, y8, y8Scale, W8.w, W8.scale, out, outType);
    else gemm_->run(stream_, L, N, d_, y, Wb, out, outType);
  };
  static const Fp8LayerWeights kNoFp8{};  // what F8 is when the products are not FP8 (never read then)

  mark(PhaseElementwise);
  {
    ResidualNormParams<T> r{};
    r.x = x;
    if (firstStage) { r.delta = tmp; r.deltaBias = w_->patchB; r.init = true; }  // else only normalise x
    r.y = y; r.shift = modv(w_->layers[lb_], 0); r.scale = modv(w_->layers[lb_], 1); r.onePlus = true;
    r.eps = dims_.eps; r.rows = L; r.d = d_; r.tokensPerFrame = T_;
    normOut(r);
    residualNorm(r, stream_);
  }
  const int tl = dims_.text_len;
  for (int l = lb_; l < le_; l++) {
    const LayerWeights<T>& Lw = w_->layers[l];
    const Fp8LayerWeights& F8 = fp8 ? w_->fp8[l] : kNoFp8;
    // self-attention
    mark(PhaseGemm);
    fromNorm(3 * d_, Lw.qkv, F8.qkv, qkv_.ptr, dtypeOf<T>());
    mark(PhaseElementwise);
    for (const Segment<T>& s : segs) {  // each stream's keys and values go into its own cache
      EngineImpl<T>& o = *s.owner;
      QkvParams<T> qp{};
      qp.qkv = qkv_.as<T>() + (size_t)s.rowOff * 3 * d; qp.bias = Lw.qkvBias; qp.normQ = Lw.normQ; qp.normK = Lw.normK;
      qp.eps = dims_.eps;
      qp.rows = s.rows; qp.d = d_; qp.headDim = hd_; qp.tokensPerFrame = T_; qp.gridW = gridW_;
      qp.framePos = framePos_.as<int>() + s.frameOff; qp.rope = w_->rope;
      qp.qRot = q_.as<T>() + (size_t)s.rowOff * d;
      qp.kRaw = o.layerRows(o.kRaw_, l) + (size_t)s.blockOff * d;
      qp.kRot = o.layerRows(o.kRot_, l) + (size_t)s.blockOff * d;
      qp.v = o.layerRows(o.v_, l) + (size_t)s.blockOff * d;
      qp.posOut = o.layerPos(l) + (size_t)s.blockOff * 3;
      qkvNormRope(qp, stream_);
      if (s.kept)
        CUDA_CHECK(cudaMemcpyAsync(s.kept->q->template as<T>() + (size_t)(l - lb_) * s.rows * d, qp.qRot, (size_t)s.rows * d * ES,
                                   cudaMemcpyDeviceToDevice, stream_));
    }
    mark(PhaseSelfAttn);
    for (const Segment<T>& s : segs) {  // each stream against its own [cache || block]
      EngineImpl<T>& o = *s.owner;
      AttentionParams<T> ap{};
      ap.q = q_.as<T>() + (size_t)s.rowOff * d; ap.k = o.layerRows(o.kRot_, l); ap.v = o.layerRows(o.v_, l);
      ap.o = attn_.as<T>() + (size_t)s.rowOff * d;
      ap.qStride = d_; ap.kvStride = d_; ap.oStride = d_;
      ap.Lq = s.rows; ap.heads = dims_.heads; ap.headDim = hd_;
      ap.segA = s.cacheRows; ap.segB = s.rows; ap.segBOffset = s.blockOff;
      ap.scale = 1.f / std::sqrt(static_cast<float>(hd_));
      attention(ap, true, &o, l - lb_);
    }
    mark(PhaseGemm);
    gemm_->run(stream_, L, d_, d_, attn_.as<T>(), Lw.o, tmp, DType::F32);
    mark(PhaseElementwise);
    {
      ResidualNormParams<T> r{};
      r.x = x; r.delta = tmp; r.deltaBias = Lw.oBias; r.gate = modv(Lw, 2);
      r.y = y; r.shift = ModVec{Lw.norm3B, nullptr, 0}; r.scale = ModVec{Lw.norm3W, nullptr, 0}; r.onePlus = false;
      r.eps = dims_.eps; r.rows = L; r.d = d_; r.tokensPerFrame = T_;
      normOut(r);
      residualNorm(r, stream_);
    }
    // cross-attention, each stream to its own prompt
    mark(PhaseGemm);
    fromNorm(d_, Lw.cq, F8.cq, q_.ptr, dtypeOf<T>());
    mark(PhaseElementwise);
    rmsNormRows(q_.as<T>(), Lw.cqBias, Lw.cNormQ, q_.as<T>(), L, d_, dims_.eps, stream_);
    mark(PhaseCrossAttn);
    for (const Segment<T>& s : segs) {
      EngineImpl<T>& o = *s.owner;
      AttentionParams<T> cp{};
      cp.q = q_.as<T>() + (size_t)s.rowOff * d; cp.o = attn_.as<T>() + (size_t)s.rowOff * d;
      cp.k = o.ctxK_.template as<T>() + (size_t)(l - lb_) * tl * d; cp.v = o.ctxV_.template as<T>() + (size_t)(l - lb_) * tl * d;
      cp.qStride = d_; cp.kvStride = d_; cp.oStride = d_;
      cp.Lq = s.rows; cp.heads = dims_.heads; cp.headDim = hd_;
      cp.segA = tl; cp.segB = 0; cp.segBOffset = 0;
      cp.scale = 1.f / std::sqrt(static_cast<float>(hd_));
      attention(cp);
    }
    mark(PhaseGemm);
    gemm_->run(stream_, L, d_, d_, attn_.as<T>(), Lw.co, tmp, DType::F32);
    mark(PhaseElementwise);
    {
      ResidualNormParams<T> r{};
      r.x = x; r.delta = tmp; r.deltaBias = Lw.coBias;
      r.y = y; r.shift = modv(Lw, 3); r.scale = modv(Lw, 4); r.onePlus = true;
      r.eps = dims_.eps; r.rows = L; r.d = d_; r.tokensPerFrame = T_;
      normOut(r);
      residualNorm(r, stream_);
    }
    // feed-forward
    mark(PhaseGemm);
    const int ffn = dims_.ffn_dim;
    bool fused = false;
    if constexpr (std::is_same_v<T, bf16>) {
      fused = fp8 ? gemm_->runFp8BiasGelu(stream_, L, ffn, d_, y8, y8Scale, F8.ffn1.w, F8.ffn1.scale, Lw.ffn1BiasLow, ffnH_.as<T>())
                  : gemm_->runBiasGelu(stream_, L, ffn, d_, y, Lw.ffn1, Lw.ffn1BiasLow, ffnH_.as<T>());
    }
    if (!fused) {
      fromNorm(ffn, Lw.ffn1, F8.ffn1, ffnH_.ptr, dtypeOf<T>());
      mark(PhaseElementwise);
      biasAct(ffnH_.as<T>(), Lw.ffn1Bias, L, ffn, 1, stream_);
    }
    if (fp8) {
      if constexpr (std::is_same_v<T, bf16>) {
        mark(PhaseElementwise);
        quantizeRowsE4m3(ffnH_.as<T>(), L, ffn, ffnH8_.as<uint8_t>(), ffnH8Scale_.as<float>(), stream_);
      }
      mark(PhaseGemm);
      gemm_->runFp8(stream_, L, d_, ffn, ffnH8_.as<uint8_t>(), ffnH8Scale_.as<float>(), F8.ffn2.w, F8.ffn2.scale, tmp, DType::F32);
    } else {
      mark(PhaseGemm);
      gemm_->run(stream_, L, d_, ffn, ffnH_.as<T>(), Lw.ffn2, tmp, DType::F32);
    }
    mark(PhaseElementwise);
    {
      ResidualNormParams<T> r{};
      r.x = x; r.delta = tmp; r.deltaBias = Lw.ffn2Bias; r.gate = modv(Lw, 5);
      r.y = y; r.onePlus = true;
      if (l + 1 < le_) {
        r.shift = modv(w_->layers[l + 1], 0); r.scale = modv(w_->layers[l + 1], 1);
        normOut(r);
      } else if (lastStage) {  // head: h = head.modulation + e (the time embedding, not e0)
        r.shift = ModVec{w_->headMod, emb_.as<float>(), d_}; r.scale = ModVec{w_->headMod + d, emb_.as<float>(), d_};
      } else {
        r.y = nullptr;  // the next stage normalises x with its own first layer's modulation
      }
      r.eps = dims_.eps; r.rows = L; r.d = d_; r.tokensPerFrame = T_;
      residualNorm(r, stream_);
    }
  }
  mark(PhaseHead);
  if (lastStage) {
    gemm_->run(stream_, L, pf_, d_, y, w_->headW, tmp, DType::F32);
    for (const Segment<T>& s : segs)
      unpatchify(tmp + (size_t)s.rowOff * pf_, w_->headB, flow_.as<float>() + frameSize * s.frameOff, C, s.frames, H, W,
                 dims_.patch[0], dims_.patch[1], dims_.patch[2], stream_);
  } else {
    CUDA_CHECK(cudaMemcpyAsync(io.hiddenOut, x, (size_t)L * d * 4, cudaMemcpyDeviceToDevice, stream_));
  }
  };
  // a graph covers a whole single-GPU forward of one stream, or of a batch of streams, without kept queries (their
  // buffers change from call to call)
  launchBody(segs, L, frames, firstStage && lastStage && !anyKept, body);
  const auto tIssued = std::chrono::steady_clock::now();
  if (lastStage)
    for (const Segment<T>& s : segs)
      CUDA_CHECK(cudaMemcpyAsync(s.flowOut, flow_.as<float>() + frameSize * s.frameOff, frameSize * s.frames * 4,
                                 cudaMemcpyDefault, stream_));
  mark(PhaseCount);
  CUDA_CHECK(cudaEventRecord(fwdEnd_, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (profile_) {
    for (size_t i = 0; i + 1 < marks_.size(); i++) {
      float ms = 0.f;
      CUDA_CHECK(cudaEventElapsedTime(&ms, marks_[i].first, marks_[i + 1].first));
      profileMs_[marks_[i].second] += ms;
    }
  }
  float gpuMs = 0.f;
  CUDA_CHECK(cudaEventElapsedTime(&gpuMs, fwdStart_, fwdEnd_));
  const auto tDone = std::chrono::steady_clock::now();
  using Ms = std::chrono::duration<double, std::milli>;
  // a batched forward counts once in each of its engines' stats, with the batch's times
  for (const Segment<T>& s : segs) {
    EngineImpl<T>& o = *s.owner;
    if (s.keepBlockKv) o.pendingRows_ = s.rows;
    o.stats_[0] += 1;
    o.stats_[1] += Ms(tDone - tEnter).count();
    o.stats_[2] += Ms(tIssued - tEnter).count();
    o.stats_[3] += gpuMs;
    if (o.returnedOnce_) o.stats_[4] += Ms(tEnter - o.lastReturn_).count();
    o.lastReturn_ = tDone;
    o.returnedOnce_ = true;
  }
}

template <typename T>
void forwardBatchAs(std::vector<BatchForward>& items) {
  auto* first = dynamic_cast<EngineImpl<T>*>(items[0].engine);
  if (!first) throw NativeError("forwardBatch: the first engine is over several GPUs (batches take single-GPU engines)");
  first->forwardMany(items);
}

void forwardBatch(std::vector<BatchForward>& items) {
  if (items.empty()) return;
  for (const BatchForward& b : items)
    if (!b.engine) throw NativeError("forwardBatch: an engine handle is null");
  if (dynamic_cast<EngineImpl<float>*>(items[0].engine)) forwardBatchAs<float>(items);
  else forwardBatchAs<bf16>(items);
}

template <typename T>
void EngineImpl<T>::clearGraphs() {
  for (auto& kv : graphs_)
    if (kv.second) cudaGraphExecDestroy(kv.second);
  graphs_.clear();
}

template <typename T>
void EngineImpl<T>::launchBody(const std::vector<Segment<T>>& segs, int L, int frames, bool graphable,
                               const std::function<void()>& body) {
  if (!graphable || !graphsMode_ || graphsBroken_ || profile_) {
    body();
    return;
  }
  std::vector<uintptr_t> key = {(uintptr_t)L, (uintptr_t)frames, (uintptr_t)cacheRows_, (uintptr_t)segs[0].blockOff, (uintptr_t)cap_,
                                reinterpret_cast<uintptr_t>(w_.get())};
  if (segs.size() > 1) {
    // a batch: every stream's place in it, its cache's shape and every buffer of its own the launches read or write
    key.push_back(segs.size());
    for (const Segment<T>& s : segs) {
      const EngineImpl<T>& o = *s.owner;
      for (uintptr_t v : {reinterpret_cast<uintptr_t>(&o), (uintptr_t)s.rows, (uintptr_t)s.frames, (uintptr_t)s.cacheRows,
                          (uintptr_t)s.blockOff, (uintptr_t)o.cacheRows_, (uintptr_t)o.cap_})
        key.push_back(v);
      for (const DeviceBuffer* b : {&o.kRaw_, &o.kRot_, &o.v_, &o.pos_, &o.ctxK_, &o.ctxV_}) key.push_back(reinterpret_cast<uintptr_t>(b->ptr));
      if (o.sdpa_) o.sdpa_->addresses(key);
      if (o.fp8_) o.fp8_->addresses(key);
      if (o.hopper_) o.hopper_->addresses(key);
    }
  }
  if (sdpa_) sdpa_->addresses(key);
  if (hopper_) hopper_->addresses(key);
  for (const DeviceBuffer* b : {&x_, &y_, &qkv_, &q_, &attn_, &tmp_, &ffnH_, &patches_, &flow_, &latent_, &tsteps_, &framePos_,
                                &sinEmb_, &temb1_, &emb_, &emb0_, &kRaw_, &kRot_, &v_, &pos_, &ctxK_, &ctxV_})
    key.push_back(reinterpret_cast<uintptr_t>(b->ptr));
  if (fp8_) fp8_->addresses(key);
  key.push_back(fp8Products_);
  for (const DeviceBuffer* b : {&y8_, &y8Scale_, &ffnH8_, &ffnH8Scale_}) key.push_back(reinterpret_cast<uintptr_t>(b->ptr));
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // first forward of this shape: direct launches (plans are built and workspaces settle), captured next time
    if (graphs_.size() >= kMaxGraphs) clearGraphs();
    graphs_.emplace(std::move(key), nullptr);
    body();
    return;
  }
  if (!it->second) {
    std::string why;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      body();
    } catch (const std::exception& e) {
      why = e.what();
    }
    const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
    if (why.empty() && ended != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(ended);
    if (why.empty()) {
      const cudaError_t made = cudaGraphInstantiateWithFlags(&exec, graph, 0);
      if (made != cudaSuccess) why = std::string("cudaGraphInstantiateWithFlags: ") + cudaGetErrorString(made);
    }
    if (graph) cudaGraphDestroy(graph);
    if (!why.empty()) {
      cudaGetLastError();  // the failed capture's error is not the next call's
      graphsBroken_ = true;
      stats_[7] = 1;
      clearGraphs();
      static std::once_flag said;
      std::call_once(said, [&] {
        std::fprintf(stderr, "sinkstream native engine: CUDA graph capture failed (%s); forwards use direct launches\n",
                     why.c_str());
      });
      body();
      return;
    }
    it->second = exec;
    stats_[6] += 1;
  }
  CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
  stats_[5] += 1;
}

template <typename T>
void EngineImpl<T>::updateCache(int rows, int terms, bool perLayer, const int32_t* sources, const float* weights,
                         const float* positions) {
  if (rows < 0 || terms <= 0) throw NativeError("updateCache: rows must be >= 0 and terms >= 1");
  const int tables = perLayer ? dims_.layers : 1;
  const size_t entries = (size_t)tables * rows * terms;
  const int live = cacheRows_ + pendingRows_;
  for (size_t i = 0; i < entries; i++)
    if (sources[i] < 0 || sources[i] >= live)
      throw NativeError("updateCache: source index " + std::to_string(sources[i]) + " at entry " + std::to_string(i) +
                        " is outside [0, " + std::to_string(live) + ") (cache rows + pending rows)");
  ensureCapacity(std::max(rows, live));
  if (rows > 0) {
    updIdx_.reserve(entries * 4);
    updW_.reserve(entries * 4);
    updPos_.reserve((size_t)tables * rows * 3 * 4);
    nextK_.reserve(kRaw_.bytes);
    nextV_.reserve(v_.bytes);
    CUDA_CHECK(cudaMemcpyAsync(updIdx_.ptr, sources, entries * 4, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaMemcpyAsync(updW_.ptr, weights, entries * 4, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaMemcpyAsync(updPos_.ptr, positions, (size_t)tables * rows * 3 * 4, cudaMemcpyHostToDevice, stream_));
    for (int l = lb_; l < le_; l++) {
      const int t = perLayer ? l : 0;  // per-layer plans come for every layer of the model
      const size_t off = (size_t)t * rows * terms;
      const float* pos = updPos_.as<float>() + (size_t)t * rows * 3;
      cacheBlend(layerRows(kRaw_, l), layerRows(v_, l), updIdx_.as<int>() + off, updW_.as<float>() + off, rows, terms,
                 d_, hd_, pos, w_->rope, layerRows(nextK_, l), layerRows(nextV_, l), layerRows(kRot_, l), stream_);
      CUDA_CHECK(cudaMemcpyAsync(layerPos(l), pos, (size_t)rows * 3 * 4, cudaMemcpyDeviceToDevice, stream_));
    }
    std::swap(kRaw_.ptr, nextK_.ptr);
    std::swap(kRaw_.bytes, nextK_.bytes);
    std::swap(v_.ptr, nextV_.ptr);
    std::swap(v_.bytes, nextV_.bytes);
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  cacheRows_ = rows;
  pendingRows_ = 0;
  cacheVersion_++;
  lastReturn_ = std::chrono::steady_clock::now();
  returnedOnce_ = true;
}

template <typename T>
void EngineImpl<T>::scoreCache(int n, const int32_t* ids, const int32_t* frameStart, const int32_t* frameEnd, int reduce,
                        float* out) {
  const int rows = cacheRows_;
  const size_t d = d_;
  for (int i = 0; i < n; i++) {
    auto it = kept_.find(ids[i]);
    if (it == kept_.end()) throw NativeError("scoreCache: unknown queriesId " + std::to_string(ids[i]));
    if (frameStart[i] < 0 || frameEnd[i] > it->second.frames || frameStart[i] >= frameEnd[i])
      throw NativeError("scoreCache: frames [" + std::to_string(frameStart[i]) + ", " + std::to_string(frameEnd[i]) +
                        ") are outside the pass's " + std::to_string(it->second.frames) + " frames");
  }
  const size_t total = (size_t)nl_ * rows;
  if (rows == 0) return;
  scoreBuf_.reserve(total * 4);
  const float scale = 1.f / (dims_.heads * std::sqrt(static_cast<float>(hd_)));
  const int chunk = 1024;
  if (reduce == 1) logits_.reserve((size_t)chunk * rows * 4);
  else qsum_.reserve(d * 4);
  for (int l = lb_; l < le_; l++) {
    float* scores = scoreBuf_.as<float>() + (size_t)(l - lb_) * rows;
    if (reduce == 0) CUDA_CHECK(cudaMemsetAsync(qsum_.ptr, 0, d * 4, stream_));
    bool first = true;
    for (int i = 0; i < n; i++) {
      const KeptQueries& k = kept_.at(ids[i]);
      const int tpf = k.rows / k.frames;
      const T* q = k.q->as<T>() + (size_t)(l - lb_) * k.rows * d + (size_t)frameStart[i] * tpf * d;
      const int qRows = (frameEnd[i] - frameStart[i]) * tpf;
      if (reduce == 0) {
        columnSum(q, qRows, d_, qsum_.as<float>(), stream_);
      } else {
        for (int s = 0; s < qRows; s += chunk) {
          const int m = std::min(chunk, qRows - s);
          gemm_->run(stream_, m, rows, d_, q + (size_t)s * d, layerRows(kRot_, l), logits_.ptr, DType::F32);
          maxColumns(logits_.as<float>(), m, rows, scale, first, scores, stream_);
          first = false;
        }
      }
    }
    if (reduce == 0) dotRows(qsum_.as<float>(), layerRows(kRot_, l), rows, d_, scale, scores, stream_);
  }
  CUDA_CHECK(cudaMemcpyAsync(out, scoreBuf_.ptr, total * 4, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <typename T>
void EngineImpl<T>::releaseQueries(int id) {
  auto it = kept_.find(id);
  if (it == kept_.end()) return;  // idempotent
  keptPool_.push_back(std::move(it->second.q));
  kept_.erase(it);
  while (keptPool_.size() > 4) keptPool_.erase(keptPool_.begin());
}

template <typename T>
void EngineImpl<T>::resetCache() {
  cacheRows_ = 0;
  pendingRows_ = 0;
  cacheVersion_++;
}

template <typename T>
void EngineImpl<T>::readCache(float* keys, float* values, float* positions) {
  const int rows = cacheRows_;
  const size_t d = d_, per = (size_t)rows * d;
  if (rows == 0) return;
  DeviceBuffer tmp;
  tmp.reserve(per * 4);
  for (int l = lb_; l < le_; l++) {
    const size_t i = l - lb_;  // outputs hold this stage's layers
    if (keys) {
      toF32<T>(layerRows(kRaw_, l), tmp.as<float>(), per, stream_);
      CUDA_CHECK(cudaMemcpyAsync(keys + i * per, tmp.ptr, per * 4, cudaMemcpyDeviceToHost, stream_));
    }
    if (values) {
      toF32<T>(layerRows(v_, l), tmp.as<float>(), per, stream_);
      CUDA_CHECK(cudaMemcpyAsync(values + i * per, tmp.ptr, per * 4, cudaMemcpyDeviceToHost, stream_));
    }
    if (positions)
      CUDA_CHECK(cudaMemcpyAsync(positions + i * rows * 3, layerPos(l), (size_t)rows * 3 * 4, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
}

std::unique_ptr<Engine> makeEngine(const ssn_dims& dims, int device, int precision, int layerBegin, int layerEnd,
                                   const std::string& weightsKey) {
  if (precision == 1) return std::make_unique<EngineImpl<float>>(dims, device, layerBegin, layerEnd, weightsKey);
  return std::make_unique<EngineImpl<bf16>>(dims, device, layerBegin, layerEnd, weightsKey);
}

void enablePeer(int peer) {
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  if (peer == current) return;
  int can = 0;
  CUDA_CHECK(cudaDeviceCanAccessPeer(&can, current, peer));
  if (!can) return;  // cudaMemcpyPeer still works, through the host
  const cudaError_t e = cudaDeviceEnablePeerAccess(peer, 0);
  if (e == cudaErrorPeerAccessAlreadyEnabled) cudaGetLastError();  // clear it
  else CUDA_CHECK(e);
}

}  // namespace ssn
