/*
 * The native engine's C API: what the Node-API addon (addon.cc) and the Python tools (ctypes) call.
 * Every function returns 0 on success and -1 on failure; ssn_last_error() then says why (per thread).
 * Host tensors are float32, row-major, with the layouts of src/engine/types.ts.
 */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ssn_dims {
  int dim, layers, heads, ffn_dim, freq_dim, latent_channels;
  int patch[3];
  int text_dim, text_len;
  float eps;
  double rope_theta;
  int rope_max_position;
  int rope_split[3]; /* complex pairs for (frame, row, column); they sum to head_dim / 2 */
  int latent_height, latent_width;
} ssn_dims;

typedef struct ssn_engine ssn_engine;

#define SSN_ABI_VERSION 9

int ssn_abi_version(void);
const char* ssn_last_error(void);
int ssn_device_count(int* count);
/* Name of a device ("NVIDIA H100 80GB HBM3"), written into buf (NUL-terminated). */
int ssn_device_name(int device, char* buf, int size);

/* precision: 0 = bf16 storage and tensor-core products (fast path), 1 = fp32 throughout (exact; tests). */
int ssn_create(const ssn_dims* dims, int device, int precision, ssn_engine** out);
void ssn_destroy(ssn_engine* e);
/* ssn_create for model layers [layer_begin, layer_end) only: a pipeline stage (per-layer storage, scores and cache
   reads cover those layers; the first stage embeds the latent, the last one runs the head), or all of them.
   weights_key (NULL or "" = own weights): engines made with the same key (which must name the weights' content,
   e.g. a checkpoint path and its modification time) and the same model, layers, precision and device hold one copy
   of the weights. When a live engine has them complete, *shared = 1 (shared may be NULL) and the new engine needs
   no ssn_set_weight or ssn_finalize (they do nothing); else *shared = 0 and the weights are given as usual. */
int ssn_create_stage(const ssn_dims* dims, int device, int precision, int layer_begin, int layer_end,
                     const char* weights_key, ssn_engine** out, int* shared);
int ssn_layers(ssn_engine* e, int* layer_begin, int* layer_end);
/* *shared = 1 when the engine got complete weights from a live engine of the same weights key. */
int ssn_weights_shared(ssn_engine* e, int* shared);
/* One engine over several GPUs: stage i runs the next layer_counts[i] layers on devices[i] (the counts add up to the
   model's layers); the hidden state goes from GPU to GPU inside forward. Weights must come from the host. Same calls
   as one engine: scores and cache reads cover all layers. */
int ssn_create_pipeline(const ssn_dims* dims, int precision, int stages, const int* devices, const int* layer_counts,
                        const char* weights_key, ssn_engine** out, int* shared);

/* One weight under its canonical Wan key; data holds `count` float32 (on the host, or on this engine's
   device when on_device != 0). */
int ssn_set_weight(ssn_engine* e, const char* key, const float* data, int64_t count, int on_device);
/* Checks that every weight was given; the first missing key is named in the error. */
int ssn_finalize(ssn_engine* e);

/* context [text_len, text_dim] */
int ssn_set_prompt(ssn_engine* e, const float* context);

/* latent [C, frames, H, W]; timesteps, frame_positions [frames]; flow_out [C, frames, H, W].
   keep_queries: 0 none, 1 sum, 2 max; *queries_id receives the handle (or -1). */
int ssn_forward(ssn_engine* e, const float* latent, int frames, const float* timesteps, const int32_t* frame_positions,
                int keep_block_kv, int keep_queries, float* flow_out, int* queries_id);

/* ssn_forward for a stage. hidden_in: the previous stage's hidden state [frames * tokens_per_frame, dim] fp32 on
   device hidden_in_device (NULL for the first stage, whose input is latent); hidden_out: where this stage writes its
   hidden state, on its own device (all stages but the last; the last writes flow_out). Returns when done. */
int ssn_forward_stage(ssn_engine* e, const float* latent, const void* hidden_in, int hidden_in_device, void* hidden_out,
                      int frames, const float* timesteps, const int32_t* frame_positions, int keep_block_kv,
                      int keep_queries, float* flow_out, int* queries_id);

/* One stream's forward in ssn_forward_batch: ssn_forward's arguments for `engine`; queries_id is written. */
typedef struct ssn_batch_item {
  ssn_engine* engine;
  const float* latent;
  int frames;
  const float* timesteps;
  const int32_t* frame_positions;
  int keep_block_kv;
  int keep_queries;
  float* flow_out;
  int queries_id;
} ssn_batch_item;

/* The forwards of n streams as one forward: the token-wise work (modulation, norms, the products, RoPE) over all their
   rows at once, self- and cross-attention per stream against its own cache and prompt. Each item is what ssn_forward
   would do for its engine (same cache effects and outputs, up to the products' rounding at another row count). The
   engines must be distinct, single-GPU engines of the whole model on one device holding one weight set (created
   with one weights key); it runs on the first one's stream, without CUDA graphs. Returns when done. */
int ssn_forward_batch(ssn_batch_item* items, int n);

int ssn_update_cache(ssn_engine* e, int rows, int terms, int per_layer, const int32_t* sources, const float* weights,
                     const float* positions);
/* out [layers, cache_rows]; reduce: 0 sum, 1 max. Selection i: frames [frame_start[i], frame_end[i]) of pass ids[i]. */
int ssn_score_cache(ssn_engine* e, int n, const int32_t* ids, const int32_t* frame_start, const int32_t* frame_end,
                    int reduce, float* out);
int ssn_release_queries(ssn_engine* e, int id);
int ssn_reset_cache(ssn_engine* e);
int ssn_cache_info(ssn_engine* e, int* rows, int* pending);
/* keys, values [layers, rows, dim] (keys un-rotated), positions [layers, rows, 3]; any may be NULL. */
int ssn_read_cache(ssn_engine* e, float* keys, float* values, float* positions);

/* Profiling: when on, each forward records device time per phase; ssn_profile_read fills
   ms[0..5] = patch+time, gemm, self-attention, cross-attention, norms/rope/elementwise, head. */
int ssn_profile(ssn_engine* e, int on);
int ssn_profile_read(ssn_engine* e, double* ms);

/* The bf16 attention kernel alone on device arrays (bf16) q, o [lq, heads*head_dim], k, v [lk, heads*head_dim]:
   one call, then `reps` timed calls; *ms per call. variant: 0 = the engine's choice (see attention.h). */
int ssn_attention(int device, const void* q, const void* k, const void* v, void* o, int lq, int lk, int heads,
                  int head_dim, int variant, int reps, double* ms);

/* Which attention the bf16 path uses: "cuDNN 9.14.0 (libcudnn.so.9)", or why the own kernel is used. The string
   stays valid until the next call. Env SSN_ATTENTION=auto|kernel|cudnn chooses; SSN_CUDNN_LIBRARY names the library. */
const char* ssn_attention_backend(void);
/* cuDNN attention plans this engine has built (one per new shape) and the milliseconds spent building them. */
int ssn_attention_plans(ssn_engine* e, int* plans, double* ms);

/* Every forward's timing since the last reset (reset != 0: zeroed after reading; the fallback flag stays); the first n
   (up to 8) values into out: [0] forwards, [1] wall ms inside ssn_forward, [2] ms to issue the work (inputs copied,
   launches or a graph launch enqueued), [3] GPU ms (events around the input copies .. the output copy), [4] idle ms
   before the forwards (since the engine's previous forward or cache update returned), [5] CUDA graph launches,
   [6] graphs captured, [7] 1 once a capture failed and the engine went back to direct launches. Engines over several
   GPUs report zeros. */
int ssn_forward_stats(ssn_engine* e, double* out, int n, int reset);
/* CUDA graphs for forwards of a repeated shape, mode 0 off (the default) or 1 on: a single-GPU forward without kept
   queries runs directly the first time at a shape (block rows, cache rows, buffers), is captured the second time and
   replayed from then on; its inputs are copied into fixed device buffers before. A failed capture turns graphs off for
   the engine (said once on stderr; ssn_forward_stats [7]). Engines over several GPUs ignore it. */
int ssn_set_cuda_graphs(ssn_engine* e, int mode);
/* Self-attention's precision: mode 0 exact (the engine's storage type; the default), 1 FP8 (E4M3): q, k and v
   quantised per tensor on the device and attended by cuDNN's fused FP8 attention (Hopper or newer, the bf16 engine).
   Fails (nothing changed) where FP8 attention is not available; a forward whose shape has no FP8 plan fails. */
int ssn_set_attention_precision(ssn_engine* e, int mode);
/* The products that read a normalised row (q/k/v, cross-attention's q, both of the FFN's): mode 0 in the storage type
   (the default), 1 in FP8 (E4M3) with a scale per row of each operand (each token's row from the norm or the FFN's
   hidden layer, each output feature's weights), fp32 accumulation. The bf16 engine on Hopper or newer only; the
   weights are quantised once per weight set (now if given, else at finalize). Fails (nothing changed) elsewhere. */
int ssn_set_product_precision(ssn_engine* e, int mode);
/* Self-attention's kernel on the bf16 path: mode 0 auto (exact attention on the own Hopper kernel on a Hopper GPU at
   head_dim 128, else cuDNN's fused attention; FP8 attention on cuDNN's; the default), 1 cuDNN's fused attention (else,
   for exact attention, the own FlashAttention-2-style kernel), 2 the own Hopper kernels for exact and FP8 attention
   (native/src/hopper-attention.h, hopper-fp8-attention.h). Fails (nothing changed) where mode 2 cannot run. */
int ssn_set_attention_kernel(ssn_engine* e, int mode);
/* What self-attention runs on now: 0 the own FlashAttention-2-style kernel, 1 cuDNN, 2 the own Hopper kernels. */
int ssn_attention_kernel(ssn_engine* e, int* kernel);
/* cuDNN attention plans are built once per device and shape for the whole process: shapes this engine found built by
   another engine. */
int ssn_attention_plans_reused(ssn_engine* e, int* plans);
/* A block's denoising steps without returning between forwards (native/src/denoise-steps.h): from x (the block's first
   noise [latent_size = C * frames * H * W], overwritten on the host path), `steps` forwards at sigmas [steps] with the
   generator's sampler between them (a kernel on the engine's GPU, the latent kept there; on the host for an engine
   over several GPUs): re-noise with noises [(steps - 1) * latent_size] (step k + 1's fresh noise), or
   Euler when noises is NULL; sample_prediction != 0: the head's x0 becomes the flow (x - x0) / max(sigma, sigma_floor).
   x0_out [latent_size]: the last step's x0. flow_scratch [latent_size]. No block K/V kept, no queries kept. */
int ssn_denoise_steps(ssn_engine* e, float* x, int64_t latent_size, int frames, const int32_t* frame_positions,
                      const double* sigmas, int steps, const float* noises, int sample_prediction, double sigma_floor,
                      float* flow_scratch, float* x0_out);
/* The stream's engine work for `blocks` whole blocks run from C with nothing between the calls (native/src/block-loop.h):
   per block `steps` forwards from noise [latent_size = C * frames * H * W] at sigmas [steps] (the renoise sampler on
   the host), the clean pass, and a sink-window update keeping the cache's row count (at least sink_rows rows); pending
   rows are taken in first. Replaces the cached rows' content (a measurement: reset the cache after). out [3 * blocks]:
   per block its wall ms, its forwards' ms and its update's ms. */
int ssn_loop_blocks(ssn_engine* e, const float* noise, int64_t latent_size, int frames, const float* sigmas, int steps,
                    const int32_t* frame_positions, int tokens_per_frame, int grid_width, int blocks, int sink_rows,
                    double* out);

/* ---- TAEHV decoder (taew2_1: latents of Wan2.1 to RGB24 frames; native/src/taehv-decoder.h) ---- */
typedef struct ssn_taehv ssn_taehv;
typedef struct ssn_taehv_dims {
  int latent_channels, latent_height, latent_width;
  int channels[4]; /* (256, 128, 64, 64) for taew2_1 */
} ssn_taehv_dims;

/* precision: 0 = bf16, 1 = fp32, 2 = fp16 (convolutions accumulate in fp32). Needs cuDNN 9 (loaded at run time). */
int ssn_taehv_create(const ssn_taehv_dims* dims, int device, int precision, ssn_taehv** out);
void ssn_taehv_destroy(ssn_taehv* d);
/* One weight under its checkpoint key (decoder.<layer>...; encoder.* keys are ignored), PyTorch layout, float32 on
   the host or (on_device != 0) on this decoder's device. */
int ssn_taehv_set_weight(ssn_taehv* d, const char* key, const float* data, int64_t count, int on_device);
/* Checks every weight was given; warmup_frames > 0: plans the convolutions for blocks of that many latent frames
   and decodes one block of zeros (then resets), so a stream's first block pays none of it. */
int ssn_taehv_finalize(ssn_taehv* d, int warmup_frames);
/* latent [C, frames, H, W] float32 (host) -> RGB24 frames [n, 8H, 8W, 3] into rgb_out (capacity bytes); *frames_out = n
   = 4 * frames, less 3 for a stream's first block. The MemBlocks' memory stays on the GPU between calls. */
int ssn_taehv_decode(ssn_taehv* d, const float* latent, int frames, uint8_t* rgb_out, int64_t capacity, int* frames_out);
int ssn_taehv_reset(ssn_taehv* d);
/* Frame size, convolution geometries planned, ms spent planning, device ms of the last decode (any may be NULL). */
int ssn_taehv_info(ssn_taehv* d, int* width, int* height, int* plans, double* plan_ms, double* last_ms);
/* The last decode's device ms: [0] latent upload, [1] network + RGB24 conversion, [2] frames to the host. */
int ssn_taehv_split(ssn_taehv* d, double* ms3);
/* What runs the convolutions ("cuDNN 9.19.0 (libcudnn.so.9), bf16, ..."), written into buf (NUL-terminated). */
int ssn_taehv_describe(ssn_taehv* d, char* buf, int size);

/* ---- Wan2.1 VAE decoder (conv2 + Decoder3d of Wan2.1's vae.py; native/src/wan-vae-decoder.h) ---- */
typedef struct ssn_wanvae ssn_wanvae;
typedef struct ssn_wanvae_dims {
  int dim;     /* base width: 96 for Wan2.1 (a multiple of 8) */
  int z_dim;   /* latent channels: 16 */
  int latent_height, latent_width;
} ssn_wanvae_dims;

/* precision: 0 = bf16, 1 = fp32 (no TF32), 2 = fp16 (convolutions accumulate in fp32, RMS_norm and softmax in fp32).
   Needs cuDNN 9 (loaded at run time). */
int ssn_wanvae_create(const ssn_wanvae_dims* dims, int device, int precision, ssn_wanvae** out);
void ssn_wanvae_destroy(ssn_wanvae* d);
/* One weight under its checkpoint key (conv2.*, decoder.*; other keys, e.g. encoder.*, are ignored), PyTorch layout,
   float32 on the host or (on_device != 0) on this decoder's device. "latent.mean" / "latent.std" [z_dim]: the
   statistics undone before conv2 (z * std + mean); without them the latent is used as is. */
int ssn_wanvae_set_weight(ssn_wanvae* d, const char* key, const float* data, int64_t count, int on_device);
/* Checks every weight was given; warmup_frames > 0: decodes a stream's first block and a later block of that many
   latent frames of zeros (choosing the convolution algorithms), then resets. */
int ssn_wanvae_finalize(ssn_wanvae* d, int warmup_frames);
/* latent [z_dim, frames, H, W] float32 (host) -> RGB24 frames [n, 8H, 8W, 3] into rgb_out (capacity bytes);
   *frames_out = n = 4 * frames, or 1 + 4 * (frames - 1) for a stream's first block. The causal convolutions' caches
   stay on the GPU between calls. */
int ssn_wanvae_decode(ssn_wanvae* d, const float* latent, int frames, uint8_t* rgb_out, int64_t capacity, int* frames_out);
int ssn_wanvae_reset(ssn_wanvae* d);
/* Frame size, convolution geometries planned, ms spent planning, device ms of the last decode, device bytes held
   (any may be NULL). */
int ssn_wanvae_info(ssn_wanvae* d, int* width, int* height, int* plans, double* plan_ms, double* last_ms, int64_t* device_bytes);
/* The last decode's device ms: [0] latent upload, [1] network + RGB24 conversion, [2] frames to the host. */
int ssn_wanvae_split(ssn_wanvae* d, double* ms3);
/* What runs the convolutions ("cuDNN 9.19.0 (libcudnn.so.9), bf16, ..."), written into buf (NUL-terminated). */
int ssn_wanvae_describe(ssn_wanvae* d, char* buf, int size);

#ifdef __cplusplus
}
#endif
