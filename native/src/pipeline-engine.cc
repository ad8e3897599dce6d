// One engine over several GPUs: the transformer's layers split into contiguous ranges, one stage per device,
// the hidden state copied from stage to stage (peer to peer where the GPUs allow). It keeps the Engine contract,
// so the host's loop and cache policies drive it as they drive one GPU. A single stream's forward visits the
// stages one after the other; several streams (one pipeline engine each) keep every GPU busy at once.
#include "pipeline-engine.h"

#include <string>
#include <vector>

namespace ssn {
namespace {

class PipelineEngine final : public Engine {
 public:
  PipelineEngine(std::vector<std::unique_ptr<Engine>> stages, const ssn_dims& dims)
      : stages_(std::move(stages)),
        hidden_(stages_.size() - 1),
        dim_(dims.dim),
        tokensPerFrame_((dims.latent_height / dims.patch[1]) * (dims.latent_width / dims.patch[2])) {}
  ~PipelineEngine() override {
    for (size_t i = 0; i < hidden_.size(); i++) {
      cudaSetDevice(stages_[i]->device());
      hidden_[i].release();
    }
  }

  void setWeight(const std::string& key, const float* data, int64_t count, bool onDevice) override {
    if (onDevice) throw NativeError("a pipeline engine takes weights from the host");
    each([&](Engine& s) { s.setWeight(key, data, count, false); });
  }
  void finalize() override { each([](Engine& s) { s.finalize(); }); }
  void setPrompt(const float* context) override { each([&](Engine& s) { s.setPrompt(context); }); }

  int forward(const float* latent, int frames, const float* timesteps, const int32_t* framePos, bool keepBlockKv,
              int keepQueries, float* flowOut, const StageIO&) override {
    int id = -1;
    const float* in = nullptr;
    int inDevice = 0;
    for (size_t i = 0; i < stages_.size(); i++) {
      Engine& s = *stages_[i];
      CUDA_CHECK(cudaSetDevice(s.device()));
      StageIO io;
      io.hiddenIn = in;
      io.hiddenInDevice = inDevice;
      const bool last = i + 1 == stages_.size();
      if (!last) {
        hidden_[i].reserve(static_cast<size_t>(frames) * tokensPerFrame_ * dim_ * sizeof(float));
        io.hiddenOut = hidden_[i].as<float>();
      }
      // every stage numbers its kept queries alike (same calls, same order), so the first stage's id serves all
      const int sid = s.forward(i == 0 ? latent : nullptr, frames, timesteps, framePos, keepBlockKv, keepQueries,
                                last ? flowOut : nullptr, io);
      if (i == 0) id = sid;
      else if (sid != id) throw NativeError("pipeline stages disagree on the kept queries' id");
      in = io.hiddenOut;
      inDevice = s.device();
    }
    return id;
  }

  void updateCache(int rows, int terms, bool perLayer, const int32_t* sources, const float* weights,
                   const float* positions) override {
    each([&](Engine& s) { s.updateCache(rows, terms, perLayer, sources, weights, positions); });
  }

  void scoreCache(int n, const int32_t* ids, const int32_t* frameStart, const int32_t* frameEnd, int reduce,
                  float* out) override {
    const size_t rows = cacheRows();
    each([&](Engine& s) {
      int b = 0, e = 0;
      s.layers(&b, &e);
      s.scoreCache(n, ids, frameStart, frameEnd, reduce, out + b * rows);
    });
  }

  void releaseQueries(int id) override { each([&](Engine& s) { s.releaseQueries(id); }); }
  void resetCache() override { each([](Engine& s) { s.resetCache(); }); }

  void readCache(float* keys, float* values, float* positions) override {
    const size_t rows = cacheRows();
    each([&](Engine& s) {
      int b = 0, e = 0;
      s.layers(&b, &e);
      s.readCache(keys ? keys + b * rows * dim_ : nullptr, values ? values + b * rows * dim_ : nullptr,
                  positions ? positions + b * rows * 3 : nullptr);
    });
  }

  int cacheRows() const override { return stages_.front()->cacheRows(); }
  int pendingRows() const override { return stages_.front()->pendingRows(); }
  void setProfile(bool on) override { each([&](Engine& s) { s.setProfile(on); }); }
  void setAttentionPrecision(int mode) override { each([&](Engine& s) { s.setAttentionPrecision(mode); }); }
  void setAttentionKernel(int mode) override { each([&](Engine& s) { s.setAttentionKernel(mode); }); }
  int attentionKernel() const override { return stages_.front()->attentionKernel(); }
  void setProductPrecision(int mode) override { each([&](Engine& s) { s.setProductPrecision(mode); }); }
  void profileRead(double* ms) const override {
    double part[kProfilePhases] = {};
    for (int k = 0; k < kProfilePhases; k++) ms[k] = 0;
    for (const auto& s : stages_) {
      s->profileRead(part);
      for (int k = 0; k < kProfilePhases; k++) ms[k] += part[k];
    }
  }
  void attentionPlans(int* plans, double* ms) const override {
    *plans = 0;
    *ms = 0;
    for (const auto& s : stages_) {
      int p = 0;
      double m = 0;
      s->attentionPlans(&p, &m);
      *plans += p;
      *ms += m;
    }
  }
  int device() const override { return stages_.front()->device(); }
  bool weightsShared() const override {
    for (const auto& s : stages_)
      if (!s->weightsShared()) return false;
    return true;
  }
  void layers(int* begin, int* end) const override {
    int b = 0, e = 0;
    stages_.front()->layers(begin, &e);
    stages_.back()->layers(&b, end);
  }

 private:
  template <typename F>
  void each(F&& f) {
    for (auto& s : stages_) {
      CUDA_CHECK(cudaSetDevice(s->device()));
      f(*s);
    }
  }
  std::vector<std::unique_ptr<Engine>> stages_;
  std::vector<DeviceBuffer> hidden_;  // stage i's output, on stage i's device
  const int dim_, tokensPerFrame_;
};

}  // namespace

std::unique_ptr<Engine> makePipelineEngine(const ssn_dims& dims, int precision, const std::vector<int>& devices,
                                           const std::vector<int>& layerCounts, const std::string& weightsKey) {
  if (devices.empty() || devices.size() != layerCounts.size())
    throw NativeError("a pipeline needs one layer count per device");
  int at = 0;
  for (int n : layerCounts) {
    if (n <= 0) throw NativeError("every pipeline stage needs at least one layer");
    at += n;
  }
  if (at != dims.layers)
    throw NativeError("pipeline layer counts add up to " + std::to_string(at) + "; the model has " +
                      std::to_string(dims.layers) + " layers");
  std::vector<std::unique_ptr<Engine>> stages;
  at = 0;
  for (size_t i = 0; i < devices.size(); i++) {
    stages.push_back(makeEngine(dims, devices[i], precision, at, at + layerCounts[i], weightsKey));
    at += layerCounts[i];
  }
  return std::make_unique<PipelineEngine>(std::move(stages), dims);
}

}  // namespace ssn
