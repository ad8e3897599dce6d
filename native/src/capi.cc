// C API over ssn::Engine: exceptions become return codes and a per-thread message.
#include "capi.h"
#include "engine.h"
#include "attention.h"
#include "block-loop.h"
#include "cudnn-sdpa.h"
#include "denoise-steps.h"
#include "pipeline-engine.h"
#include "taehv-decoder.h"
#include "wan-vae-decoder.h"
#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

struct ssn_engine {
  std::unique_ptr<ssn::Engine> impl;
};

struct ssn_taehv {
  std::unique_ptr<ssn::TaehvDecoder> impl;
};

struct ssn_wanvae {
  std::unique_ptr<ssn::WanVaeDecoder> impl;
};

namespace {
thread_local std::string lastError;

template <typename F>
int guard(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    lastError = e.what();
  } catch (...) {
    lastError = "unknown native error";
  }
  return -1;
}

template <typename H, typename F>
int locked(H* e, F&& f) {
  if (!e) {
    lastError = "handle is null";
    return -1;
  }
  return guard([&] {
    std::lock_guard<std::mutex> lock(e->impl->mutex);
    CUDA_CHECK(cudaSetDevice(e->impl->device()));
    f(*e->impl);
  });
}

// The native decoders (TAEHV, Wan VAE) behind one set of C functions: H is ssn_taehv or ssn_wanvae.
template <typename H>
int decoderSetWeight(H* d, const char* key, const float* data, int64_t count, int on_device) {
  return locked(d, [&](auto& t) { t.setWeight(key, data, count, on_device != 0); });
}

template <typename H>
int decoderFinalize(H* d, int warmup_frames) {
  return locked(d, [&](auto& t) { t.finalize(warmup_frames); });
}

template <typename H>
int decoderDecode(H* d, const float* latent, int frames, uint8_t* rgb_out, int64_t capacity, int* frames_out) {
  return locked(d, [&](auto& t) {
    const int n = t.decode(latent, frames, rgb_out, capacity);
    if (frames_out) *frames_out = n;
  });
}

template <typename H>
int decoderReset(H* d) {
  return locked(d, [&](auto& t) { t.reset(); });
}

/** Width, height and stats; `more(t)` adds what one kind reports besides. */
template <typename H, typename More>
int decoderInfo(H* d, int* width, int* height, int* plans, double* plan_ms, double* last_ms, More&& more) {
  return locked(d, [&](auto& t) {
    if (width) *width = t.width();
    if (height) *height = t.height();
    t.stats(plans, plan_ms, last_ms);
    more(t);
  });
}

template <typename H>
int decoderSplit(H* d, double* ms3) {
  return locked(d, [&](auto& t) { t.lastSplit(ms3); });
}

template <typename H>
int decoderDescribe(H* d, char* buf, int size) {
  return locked(d, [&](auto& t) {
    if (size <= 0) return;
    const std::string s = t.describe();
    std::strncpy(buf, s.c_str(), size - 1);
    buf[size - 1] = 0;
  });
}
}  // namespace

extern "C" {

int ssn_abi_version(void) { return SSN_ABI_VERSION; }
const char* ssn_last_error(void) { return lastError.c_str(); }

int ssn_device_count(int* count) {
  return guard([&] {
    const cudaError_t st = cudaGetDeviceCount(count);
    if (st != cudaSuccess) {
      *count = 0;
      throw ssn::NativeError(std::string("no usable CUDA device: ") + cudaGetErrorString(st));
    }
  });
}

int ssn_device_name(int device, char* buf, int size) {
  return guard([&] {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    std::strncpy(buf, prop.name, size - 1);
    buf[size - 1] = 0;
  });
}

int ssn_create(const ssn_dims* dims, int device, int precision, ssn_engine** out) {
  return guard([&] {
    *out = new ssn_engine{ssn::makeEngine(*dims, device, precision)};
  });
}

void ssn_destroy(ssn_engine* e) { delete e; }

int ssn_create_pipeline(const ssn_dims* dims, int precision, int stages, const int* devices, const int* layer_counts,
                        const char* weights_key, ssn_engine** out, int* shared) {
  return guard([&] {
    if (stages <= 0) throw ssn::NativeError("a pipeline needs at least one stage");
    *out = new ssn_engine{ssn::makePipelineEngine(*dims, precision, std::vector<int>(devices, devices + stages),
                                                  std::vector<int>(layer_counts, layer_counts + stages),
                                                  weights_key ? weights_key : "")};
    if (shared) *shared = (*out)->impl->weightsShared() ? 1 : 0;
  });
}

int ssn_create_stage(const ssn_dims* dims, int device, int precision, int layer_begin, int layer_end,
                     const char* weights_key, ssn_engine** out, int* shared) {
  return guard([&] {
    *out = new ssn_engine{ssn::makeEngine(*dims, device, precision, layer_begin, layer_end, weights_key ? weights_key : "")};
    if (shared) *shared = (*out)->impl->weightsShared() ? 1 : 0;
  });
}

int ssn_weights_shared(ssn_engine* e, int* shared) {
  return locked(e, [&](ssn::Engine& en) { *shared = en.weightsShared() ? 1 : 0; });
}

int ssn_layers(ssn_engine* e, int* layer_begin, int* layer_end) {
  return locked(e, [&](ssn::Engine& en) { en.layers(layer_begin, layer_end); });
}

int ssn_set_weight(ssn_engine* e, const char* key, const float* data, int64_t count, int on_device) {
  return locked(e, [&](ssn::Engine& en) { en.setWeight(key, data, count, on_device != 0); });
}

int ssn_finalize(ssn_engine* e) {
  return locked(e, [&](ssn::Engine& en) { en.finalize(); });
}

int ssn_set_prompt(ssn_engine* e, const float* context) {
  return locked(e, [&](ssn::Engine& en) { en.setPrompt(context); });
}

int ssn_forward(ssn_engine* e, const float* latent, int frames, const float* timesteps, const int32_t* frame_positions,
                int keep_block_kv, int keep_queries, float* flow_out, int* queries_id) {
  return locked(e, [&](ssn::Engine& en) {
    const int id = en.forward(latent, frames, timesteps, frame_positions, keep_block_kv != 0, keep_queries, flow_out);
    if (queries_id) *queries_id = id;
  });
}

int ssn_forward_batch(ssn_batch_item* items, int n) {
  return guard([&] {
    if (n <= 0) throw ssn::NativeError("forwardBatch: no forwards");
    std::vector<ssn::Engine*> engines;
    for (int i = 0; i < n; i++) {
      if (!items[i].engine) throw ssn::NativeError("forwardBatch: item " + std::to_string(i) + ": handle is null");
      engines.push_back(items[i].engine->impl.get());
    }
    // every engine's lock, taken in one global order (address) so that two batches never wait on each other
    std::vector<ssn::Engine*> order(engines);
    std::sort(order.begin(), order.end());
    order.erase(std::unique(order.begin(), order.end()), order.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    for (ssn::Engine* e : order) locks.emplace_back(e->mutex);
    CUDA_CHECK(cudaSetDevice(engines[0]->device()));
    std::vector<ssn::BatchForward> batch(n);
    for (int i = 0; i < n; i++) {
      const ssn_batch_item& it = items[i];
      batch[i].engine = engines[i];
      batch[i].latent = it.latent;
      batch[i].frames = it.frames;
      batch[i].timesteps = it.timesteps;
      batch[i].framePos = it.frame_positions;
      batch[i].keepBlockKv = it.keep_block_kv != 0;
      batch[i].keepQueries = it.keep_queries;
      batch[i].flowOut = it.flow_out;
    }
    ssn::forwardBatch(batch);
    for (int i = 0; i < n; i++) items[i].queries_id = batch[i].queriesId;
  });
}

int ssn_forward_stage(ssn_engine* e, const float* latent, const void* hidden_in, int hidden_in_device, void* hidden_out,
                      int frames, const float* timesteps, const int32_t* frame_positions, int keep_block_kv,
                      int keep_queries, float* flow_out, int* queries_id) {
  return locked(e, [&](ssn::Engine& en) {
    ssn::StageIO io;
    io.hiddenIn = static_cast<const float*>(hidden_in);
    io.hiddenInDevice = hidden_in_device;
    io.hiddenOut = static_cast<float*>(hidden_out);
    const int id = en.forward(latent, frames, timesteps, frame_positions, keep_block_kv != 0, keep_queries, flow_out, io);
    if (queries_id) *queries_id = id;
  });
}

int ssn_update_cache(ssn_engine* e, int rows, int terms, int per_layer, const int32_t* sources, const float* weights,
                     const float* positions) {
  return locked(e, [&](ssn::Engine& en) { en.updateCache(rows, terms, per_layer != 0, sources, weights, positions); });
}

int ssn_score_cache(ssn_engine* e, int n, const int32_t* ids, const int32_t* frame_start, const int32_t* frame_end,
                    int reduce, float* out) {
  return locked(e, [&](ssn::Engine& en) { en.scoreCache(n, ids, frame_start, frame_end, reduce, out); });
}

int ssn_release_queries(ssn_engine* e, int id) {
  return locked(e, [&](ssn::Engine& en) { en.releaseQueries(id); });
}

int ssn_reset_cache(ssn_engine* e) {
  return locked(e, [&](ssn::Engine& en) { en.resetCache(); });
}

int ssn_cache_info(ssn_engine* e, int* rows, int* pending) {
  return locked(e, [&](ssn::Engine& en) {
    *rows = en.cacheRows();
    *pending = en.pendingRows();
  });
}

int ssn_read_cache(ssn_engine* e, float* keys, float* values, float* positions) {
  return locked(e, [&](ssn::Engine& en) { en.readCache(keys, values, positions); });
}

int ssn_profile(ssn_engine* e, int on) {
  return locked(e, [&](ssn::Engine& en) { en.setProfile(on != 0); });
}

int ssn_profile_read(ssn_engine* e, double* ms) {
  return locked(e, [&](ssn::Engine& en) { en.profileRead(ms); });
}

int ssn_attention(int device, const void* q, const void* k, const void* v, void* o, int lq, int lk, int heads,
                  int head_dim, int variant, int reps, double* ms) {
  return guard([&] {
    CUDA_CHECK(cudaSetDevice(device));
    using ssn::bf16;
    *ms = ssn::runAttention(static_cast<const bf16*>(q), static_cast<const bf16*>(k), static_cast<const bf16*>(v),
                            static_cast<bf16*>(o), lq, lk, heads, head_dim, variant, reps);
  });
}

const char* ssn_attention_backend(void) {
  static thread_local std::string text;
  try {
    text = ssn::CudnnSdpa::describe();
  } catch (const std::exception& ex) {
    text = ex.what();
  }
  return text.c_str();
}

int ssn_attention_plans(ssn_engine* e, int* plans, double* ms) {
  return locked(e, [&](ssn::Engine& en) { en.attentionPlans(plans, ms); });
}

int ssn_forward_stats(ssn_engine* e, double* out, int n, int reset) {
  return locked(e, [&](ssn::Engine& en) {
    double all[ssn::kForwardStats];
    en.forwardStats(all, reset != 0);
    for (int i = 0; i < n && i < ssn::kForwardStats; i++) out[i] = all[i];
  });
}

int ssn_set_cuda_graphs(ssn_engine* e, int mode) {
  return locked(e, [&](ssn::Engine& en) {
    if (mode != 0 && mode != 1) throw ssn::NativeError("CUDA graphs mode must be 0 (off) or 1 (on), got " + std::to_string(mode));
    en.setCudaGraphs(mode);
  });
}

int ssn_set_attention_kernel(ssn_engine* e, int mode) {
  return locked(e, [&](ssn::Engine& en) { en.setAttentionKernel(mode); });
}

int ssn_attention_kernel(ssn_engine* e, int* kernel) {
  return locked(e, [&](ssn::Engine& en) { *kernel = en.attentionKernel(); });
}

int ssn_set_attention_precision(ssn_engine* e, int mode) {
  return locked(e, [&](ssn::Engine& en) { en.setAttentionPrecision(mode); });
}

int ssn_set_product_precision(ssn_engine* e, int mode) {
  return locked(e, [&](ssn::Engine& en) { en.setProductPrecision(mode); });
}

int ssn_attention_plans_reused(ssn_engine* e, int* plans) {
  return locked(e, [&](ssn::Engine& en) { *plans = en.attentionPlansReused(); });
}

int ssn_denoise_steps(ssn_engine* e, float* x, int64_t latent_size, int frames, const int32_t* frame_positions,
                      const double* sigmas, int steps, const float* noises, int sample_prediction, double sigma_floor,
                      float* flow_scratch, float* x0_out) {
  return locked(e, [&](ssn::Engine& en) {
    ssn::DenoiseSteps d{sigmas, steps, noises, sample_prediction != 0, sigma_floor};
    ssn::runDenoiseSteps(en, x, latent_size, frames, frame_positions, d, flow_scratch, x0_out);
  });
}

int ssn_loop_blocks(ssn_engine* e, const float* noise, int64_t latent_size, int frames, const float* sigmas, int steps,
                    const int32_t* frame_positions, int tokens_per_frame, int grid_width, int blocks, int sink_rows,
                    double* out) {
  return locked(e, [&](ssn::Engine& en) {
    ssn::runBlockLoop(en, noise, latent_size, frames, sigmas, steps, frame_positions, tokens_per_frame, grid_width, blocks,
                      sink_rows, out);
  });
}

int ssn_taehv_create(const ssn_taehv_dims* dims, int device, int precision, ssn_taehv** out) {
  return guard([&] {
    ssn::TaehvDims d;
    d.latentChannels = dims->latent_channels;
    d.latentHeight = dims->latent_height;
    d.latentWidth = dims->latent_width;
    for (int i = 0; i < 4; i++) d.channels[i] = dims->channels[i];
    *out = new ssn_taehv{ssn::makeTaehvDecoder(d, device, precision)};
  });
}

void ssn_taehv_destroy(ssn_taehv* d) { delete d; }
int ssn_taehv_set_weight(ssn_taehv* d, const char* key, const float* data, int64_t count, int on_device) {
  return decoderSetWeight(d, key, data, count, on_device);
}
int ssn_taehv_finalize(ssn_taehv* d, int warmup_frames) { return decoderFinalize(d, warmup_frames); }
int ssn_taehv_decode(ssn_taehv* d, const float* latent, int frames, uint8_t* rgb_out, int64_t capacity, int* frames_out) {
  return decoderDecode(d, latent, frames, rgb_out, capacity, frames_out);
}
int ssn_taehv_reset(ssn_taehv* d) { return decoderReset(d); }
int ssn_taehv_info(ssn_taehv* d, int* width, int* height, int* plans, double* plan_ms, double* last_ms) {
  return decoderInfo(d, width, height, plans, plan_ms, last_ms, [](ssn::TaehvDecoder&) {});
}
int ssn_taehv_split(ssn_taehv* d, double* ms3) { return decoderSplit(d, ms3); }
int ssn_taehv_describe(ssn_taehv* d, char* buf, int size) { return decoderDescribe(d, buf, size); }

int ssn_wanvae_create(const ssn_wanvae_dims* dims, int device, int precision, ssn_wanvae** out) {
  return guard([&] {
    ssn::WanVaeDims d;
    d.dim = dims->dim;
    d.zDim = dims->z_dim;
    d.latentHeight = dims->latent_height;
    d.latentWidth = dims->latent_width;
    *out = new ssn_wanvae{ssn::makeWanVaeDecoder(d, device, precision)};
  });
}

void ssn_wanvae_destroy(ssn_wanvae* d) { delete d; }
int ssn_wanvae_set_weight(ssn_wanvae* d, const char* key, const float* data, int64_t count, int on_device) {
  return decoderSetWeight(d, key, data, count, on_device);
}
int ssn_wanvae_finalize(ssn_wanvae* d, int warmup_frames) { return decoderFinalize(d, warmup_frames); }
int ssn_wanvae_decode(ssn_wanvae* d, const float* latent, int frames, uint8_t* rgb_out, int64_t capacity, int* frames_out) {
  return decoderDecode(d, latent, frames, rgb_out, capacity, frames_out);
}
int ssn_wanvae_reset(ssn_wanvae* d) { return decoderReset(d); }
int ssn_wanvae_info(ssn_wanvae* d, int* width, int* height, int* plans, double* plan_ms, double* last_ms, int64_t* device_bytes) {
  return decoderInfo(d, width, height, plans, plan_ms, last_ms, [&](ssn::WanVaeDecoder& t) {
    if (device_bytes) *device_bytes = t.deviceBytes();
  });
}
int ssn_wanvae_split(ssn_wanvae* d, double* ms3) { return decoderSplit(d, ms3); }
int ssn_wanvae_describe(ssn_wanvae* d, char* buf, int size) { return decoderDescribe(d, buf, size); }

}  // extern "C"
