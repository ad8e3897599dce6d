// Node-API binding of the C API. Long operations (prompt, forward, cache updates, scores, reads) run on
// libuv's thread pool and resolve a promise; typed arrays stay referenced until the work completes.
// The TypeScript wrapper (src/engine/native/native-engine.ts) serialises calls per engine.
#define NAPI_VERSION 8
#include <node_api.h>
#include "capi.h"
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

struct Handle {
  ssn_engine* engine = nullptr;
};

#define NAPI_CALL(env, call)                                         \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error((env), "ERR_ENGINE", "Node-API call failed: " #call); \
      return nullptr;                                                \
    }                                                                \
  } while (0)

napi_value throwNative(napi_env env, const std::string& prefix) {
  napi_throw_error(env, "ERR_ENGINE", (prefix + ssn_last_error()).c_str());
  return nullptr;
}

bool getArgs(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_ARGUMENT", ("expected " + std::to_string(want) + " arguments").c_str());
    return false;
  }
  return true;
}

/** A JS string argument (empty when it is not a string). */
std::string getString(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return "";
  std::string out(len, '\0');
  napi_get_value_string_utf8(env, v, out.data(), len + 1, &len);
  return out;
}

ssn_engine* getEngine(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p || !static_cast<Handle*>(p)->engine) {
    napi_throw_error(env, "ERR_CLOSED", "native engine handle is closed or invalid");
    return nullptr;
  }
  return static_cast<Handle*>(p)->engine;
}

template <typename T>
bool getTyped(napi_env env, napi_value v, napi_typedarray_type want, T** data, size_t* length) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type;
  void* ptr = nullptr;
  napi_value buf;
  size_t off = 0;
  if (!is || napi_get_typedarray_info(env, v, &type, length, &ptr, &buf, &off) != napi_ok || type != want) {
    napi_throw_type_error(env, "ERR_ARGUMENT",
                          want == napi_float32_array ? "expected a Float32Array" : "expected an Int32Array");
    return false;
  }
  *data = static_cast<T*>(ptr);
  return true;
}

int32_t getInt(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}

/** One asynchronous operation: `run` executes off the main thread and returns an int result. */
struct AsyncOp {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  std::vector<napi_ref> refs;
  std::function<int(int*)> run;
  int rc = 0;
  int result = 0;
  std::string error;
};

napi_value startAsync(napi_env env, const char* name, std::vector<napi_value> keep, std::function<int(int*)> run) {
  auto* op = new AsyncOp();
  op->run = std::move(run);
  for (napi_value v : keep) {
    napi_ref r;
    napi_create_reference(env, v, 1, &r);
    op->refs.push_back(r);
  }
  napi_value promise, resource;
  napi_create_promise(env, &op->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(
      env, nullptr, resource,
      [](napi_env, void* data) {
        auto* o = static_cast<AsyncOp*>(data);
        o->rc = o->run(&o->result);
        if (o->rc != 0) o->error = ssn_last_error();  // same thread as the failing call
      },
      [](napi_env env, napi_status, void* data) {
        auto* o = static_cast<AsyncOp*>(data);
        for (napi_ref r : o->refs) napi_delete_reference(env, r);
        if (o->rc == 0) {
          napi_value v;
          napi_create_int32(env, o->result, &v);
          napi_resolve_deferred(env, o->deferred, v);
        } else {
          napi_value msg, code, err;
          napi_create_string_utf8(env, o->error.c_str(), NAPI_AUTO_LENGTH, &msg);
          napi_create_string_utf8(env, "ERR_ENGINE", NAPI_AUTO_LENGTH, &code);
          napi_create_error(env, code, msg, &err);
          napi_reject_deferred(env, o->deferred, err);
        }
        napi_delete_async_work(env, o->work);
        delete o;
      },
      op, &op->work);
  napi_queue_async_work(env, op->work);
  return promise;
}

int32_t prop(napi_env env, napi_value obj, const char* name) {
  napi_value v;
  napi_get_named_property(env, obj, name, &v);
  return getInt(env, v);
}
double propD(napi_env env, napi_value obj, const char* name) {
  napi_value v;
  double x = 0;
  napi_get_named_property(env, obj, name, &v);
  napi_get_value_double(env, v, &x);
  return x;
}
void propArr3(napi_env env, napi_value obj, const char* name, int* out) {
  napi_value arr;
  napi_get_named_property(env, obj, name, &arr);
  for (uint32_t i = 0; i < 3; i++) {
    napi_value v;
    napi_get_element(env, arr, i, &v);
    out[i] = getInt(env, v);
  }
}

napi_value AbiVersion(napi_env env, napi_callback_info) {
  napi_value v;
  napi_create_int32(env, ssn_abi_version(), &v);
  return v;
}

napi_value DeviceCount(napi_env env, napi_callback_info) {
  int n = 0;
  if (ssn_device_count(&n) != 0) return throwNative(env, "");
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

napi_value DeviceName(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  char buf[256];
  if (ssn_device_name(getInt(env, argv[0]), buf, sizeof buf) != 0) return throwNative(env, "");
  napi_value v;
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &v);
  return v;
}

/** createEngine(dims: ModelDims, device: number, precision: 0 bf16 | 1 fp32) -> handle */
ssn_dims readDims(napi_env env, napi_value o) {
  ssn_dims d{};
  d.dim = prop(env, o, "dim");
  d.layers = prop(env, o, "layers");
  d.heads = prop(env, o, "heads");
  d.ffn_dim = prop(env, o, "ffnDim");
  d.freq_dim = prop(env, o, "freqDim");
  d.latent_channels = prop(env, o, "latentChannels");
  propArr3(env, o, "patch", d.patch);
  d.text_dim = prop(env, o, "textDim");
  d.text_len = prop(env, o, "textLen");
  d.eps = static_cast<float>(propD(env, o, "eps"));
  d.rope_theta = propD(env, o, "ropeTheta");
  d.rope_max_position = prop(env, o, "ropeMaxPosition");
  propArr3(env, o, "ropeSplit", d.rope_split);
  d.latent_height = prop(env, o, "latentHeight");
  d.latent_width = prop(env, o, "latentWidth");
  return d;
}

napi_value wrapEngine(napi_env env, ssn_engine* e) {
  auto* h = new Handle{e};
  napi_value ext;
  NAPI_CALL(env, napi_create_external(
                     env, h,
                     [](napi_env, void* data, void*) {
                       auto* hh = static_cast<Handle*>(data);
                       if (hh->engine) ssn_destroy(hh->engine);
                       delete hh;
                     },
                     nullptr, &ext));
  return ext;
}

/** createEngine(dims, device, precision, weightsKey) -> handle ('' = own weights; see ssn_create_stage) */
napi_value CreateEngine(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!getArgs(env, info, 4, argv)) return nullptr;
  const ssn_dims d = readDims(env, argv[0]);
  const std::string key = getString(env, argv[3]);
  ssn_engine* e = nullptr;
  if (ssn_create_stage(&d, getInt(env, argv[1]), getInt(env, argv[2]), 0, d.layers, key.c_str(), &e, nullptr) != 0)
    return throwNative(env, "");
  return wrapEngine(env, e);
}

/** createPipeline(dims, precision, devices: Int32Array, layerCounts: Int32Array, weightsKey) -> handle (over GPUs) */
napi_value CreatePipeline(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!getArgs(env, info, 5, argv)) return nullptr;
  const std::string key = getString(env, argv[4]);
  const ssn_dims d = readDims(env, argv[0]);
  size_t nDevices = 0, nCounts = 0;
  int32_t *devices, *counts;
  if (!getTyped(env, argv[2], napi_int32_array, &devices, &nDevices)) return nullptr;
  if (!getTyped(env, argv[3], napi_int32_array, &counts, &nCounts)) return nullptr;
  if (nDevices != nCounts) {
    napi_throw_error(env, nullptr, "createPipeline: one layer count per device");
    return nullptr;
  }
  ssn_engine* e = nullptr;
  if (ssn_create_pipeline(&d, getInt(env, argv[1]), static_cast<int>(nDevices), devices, counts, key.c_str(), &e, nullptr) != 0)
    return throwNative(env, "");
  return wrapEngine(env, e);
}

/** One int of the engine given as the call's only argument, read through `get`; false (an exception pending) on failure. */
bool readEngineInt(napi_env env, napi_callback_info info, int (*get)(ssn_engine*, int*), int* out) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return false;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return false;
  if (get(e, out) != 0) {
    throwNative(env, "");
    return false;
  }
  return true;
}

/** weightsShared(handle) -> true when the engine got complete weights from a live engine of the same key */
napi_value WeightsShared(napi_env env, napi_callback_info info) {
  int shared = 0;
  if (!readEngineInt(env, info, ssn_weights_shared, &shared)) return nullptr;
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, shared != 0, &out));
  return out;
}

/** attentionBackend() -> what the bf16 path's attention runs on ("cuDNN 9.14.0 (libcudnn.so.9)", or why not) */
napi_value AttentionBackend(napi_env env, napi_callback_info) {
  napi_value out;
  NAPI_CALL(env, napi_create_string_utf8(env, ssn_attention_backend(), NAPI_AUTO_LENGTH, &out));
  return out;
}

napi_value Destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) == napi_ok && p) {
    auto* h = static_cast<Handle*>(p);
    if (h->engine) ssn_destroy(h->engine);
    h->engine = nullptr;
  }
  return nullptr;
}

/** setWeight(handle, key, Float32Array) — synchronous (load time). */
napi_value SetWeight(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  char key[512];
  size_t len = 0;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[1], key, sizeof key, &len));
  float* data;
  size_t n;
  if (!getTyped(env, argv[2], napi_float32_array, &data, &n)) return nullptr;
  if (ssn_set_weight(e, key, data, static_cast<int64_t>(n), 0) != 0) return throwNative(env, "");
  return nullptr;
}

napi_value Finalize(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  if (ssn_finalize(e) != 0) return throwNative(env, "");
  return nullptr;
}

napi_value SetPrompt(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!getArgs(env, info, 2, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  float* ctx;
  size_t n;
  if (!getTyped(env, argv[1], napi_float32_array, &ctx, &n)) return nullptr;
  return startAsync(env, "ssn.setPrompt", {argv[1]}, [e, ctx](int*) { return ssn_set_prompt(e, ctx); });
}

/** forward(handle, latent, timesteps, framePositions, keepBlockKv, keepQueries, flowOut) -> Promise<queriesId> */
napi_value Forward(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!getArgs(env, info, 7, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  float *latent, *ts, *flow;
  int32_t* fp;
  size_t nl, nt, nf, no;
  if (!getTyped(env, argv[1], napi_float32_array, &latent, &nl)) return nullptr;
  if (!getTyped(env, argv[2], napi_float32_array, &ts, &nt)) return nullptr;
  if (!getTyped(env, argv[3], napi_int32_array, &fp, &nf)) return nullptr;
  if (!getTyped(env, argv[6], napi_float32_array, &flow, &no)) return nullptr;
  bool keepKv = false;
  napi_get_value_bool(env, argv[4], &keepKv);
  const int keepQ = getInt(env, argv[5]);
  const int frames = static_cast<int>(nt);
  return startAsync(env, "ssn.forward", {argv[1], argv[2], argv[3], argv[6]},
                    [=](int* result) { return ssn_forward(e, latent, frames, ts, fp, keepKv, keepQ, flow, result); });
}

/** forwardBatch(handles: handle[], requests: { latent, timesteps, framePositions, keepBlockKv, keepQueries, flow }[],
    queriesIds: Int32Array) -> Promise: the streams' forwards as one (ssn_forward_batch); queriesIds[i] = item i's kept
    queries' id, or -1. */
napi_value ForwardBatch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv)) return nullptr;
  uint32_t n = 0, nr = 0;
  bool isArray = false;
  napi_is_array(env, argv[0], &isArray);
  if (!isArray || napi_get_array_length(env, argv[0], &n) != napi_ok || napi_get_array_length(env, argv[1], &nr) != napi_ok ||
      n == 0 || nr != n) {
    napi_throw_type_error(env, "ERR_ARGUMENT", "forwardBatch: expected as many requests as handles (at least one)");
    return nullptr;
  }
  int32_t* ids;
  size_t nIds;
  if (!getTyped(env, argv[2], napi_int32_array, &ids, &nIds)) return nullptr;
  if (nIds < n) {
    napi_throw_type_error(env, "ERR_ARGUMENT", "forwardBatch: queriesIds needs one entry per request");
    return nullptr;
  }
  std::vector<ssn_batch_item> items(n);
  std::vector<napi_value> keep = {argv[2]};
  for (uint32_t i = 0; i < n; i++) {
    napi_value h, r, latentV, tsV, fpV, flowV, keepKvV, keepQV;
    napi_get_element(env, argv[0], i, &h);
    napi_get_element(env, argv[1], i, &r);
    ssn_engine* e = getEngine(env, h);
    if (!e) return nullptr;
    napi_get_named_property(env, r, "latent", &latentV);
    napi_get_named_property(env, r, "timesteps", &tsV);
    napi_get_named_property(env, r, "framePositions", &fpV);
    napi_get_named_property(env, r, "flow", &flowV);
    napi_get_named_property(env, r, "keepBlockKv", &keepKvV);
    napi_get_named_property(env, r, "keepQueries", &keepQV);
    float *latent, *ts, *flow;
    int32_t* fp;
    size_t nl, nt, nf, no;
    if (!getTyped(env, latentV, napi_float32_array, &latent, &nl)) return nullptr;
    if (!getTyped(env, tsV, napi_float32_array, &ts, &nt)) return nullptr;
    if (!getTyped(env, fpV, napi_int32_array, &fp, &nf)) return nullptr;
    if (!getTyped(env, flowV, napi_float32_array, &flow, &no)) return nullptr;
    bool keepKv = false;
    napi_get_value_bool(env, keepKvV, &keepKv);
    items[i] = ssn_batch_item{e, latent, static_cast<int>(nt), ts, fp, keepKv ? 1 : 0, getInt(env, keepQV), flow, -1};
    keep.insert(keep.end(), {latentV, tsV, fpV, flowV});
  }
  return startAsync(env, "ssn.forwardBatch", keep, [items, ids](int*) mutable {
    const int rc = ssn_forward_batch(items.data(), static_cast<int>(items.size()));
    if (rc == 0)
      for (size_t i = 0; i < items.size(); i++) ids[i] = items[i].queries_id;
    return rc;
  });
}

/** updateCache(handle, rows, terms, perLayer, sources, weights, positions) */
napi_value UpdateCache(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!getArgs(env, info, 7, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  const int rows = getInt(env, argv[1]), terms = getInt(env, argv[2]);
  bool perLayer = false;
  napi_get_value_bool(env, argv[3], &perLayer);
  int32_t* src;
  float *w, *pos;
  size_t ns, nw, np;
  if (!getTyped(env, argv[4], napi_int32_array, &src, &ns)) return nullptr;
  if (!getTyped(env, argv[5], napi_float32_array, &w, &nw)) return nullptr;
  if (!getTyped(env, argv[6], napi_float32_array, &pos, &np)) return nullptr;
  return startAsync(env, "ssn.updateCache", {argv[4], argv[5], argv[6]},
                    [=](int*) { return ssn_update_cache(e, rows, terms, perLayer, src, w, pos); });
}

/** scoreCache(handle, ids, starts, ends, reduce, out) */
napi_value ScoreCache(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!getArgs(env, info, 6, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  int32_t *ids, *st, *en;
  float* out;
  size_t n1, n2, n3, no;
  if (!getTyped(env, argv[1], napi_int32_array, &ids, &n1)) return nullptr;
  if (!getTyped(env, argv[2], napi_int32_array, &st, &n2)) return nullptr;
  if (!getTyped(env, argv[3], napi_int32_array, &en, &n3)) return nullptr;
  if (!getTyped(env, argv[5], napi_float32_array, &out, &no)) return nullptr;
  const int reduce = getInt(env, argv[4]);
  const int n = static_cast<int>(n1);
  return startAsync(env, "ssn.scoreCache", {argv[1], argv[2], argv[3], argv[5]},
                    [=](int*) { return ssn_score_cache(e, n, ids, st, en, reduce, out); });
}

napi_value ReleaseQueries(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!getArgs(env, info, 2, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  const int id = getInt(env, argv[1]);
  return startAsync(env, "ssn.releaseQueries", {}, [=](int*) { return ssn_release_queries(e, id); });
}

napi_value ResetCache(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  return startAsync(env, "ssn.resetCache", {}, [=](int*) { return ssn_reset_cache(e); });
}

napi_value CacheInfo(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  int rows = 0, pending = 0;
  if (ssn_cache_info(e, &rows, &pending) != 0) return throwNative(env, "");
  napi_value obj, r, p;
  napi_create_object(env, &obj);
  napi_create_int32(env, rows, &r);
  napi_create_int32(env, pending, &p);
  napi_set_named_property(env, obj, "rows", r);
  napi_set_named_property(env, obj, "pending", p);
  return obj;
}

/** readCache(handle, keys, values, positions) — arrays sized for the current rows. */
napi_value ReadCache(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!getArgs(env, info, 4, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  float *k, *v, *p;
  size_t nk, nv, np;
  if (!getTyped(env, argv[1], napi_float32_array, &k, &nk)) return nullptr;
  if (!getTyped(env, argv[2], napi_float32_array, &v, &nv)) return nullptr;
  if (!getTyped(env, argv[3], napi_float32_array, &p, &np)) return nullptr;
  return startAsync(env, "ssn.readCache", {argv[1], argv[2], argv[3]},
                    [=](int*) { return ssn_read_cache(e, k, v, p); });
}

napi_value Profile(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!getArgs(env, info, 2, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  bool on = false;
  napi_get_value_bool(env, argv[1], &on);
  if (ssn_profile(e, on) != 0) return throwNative(env, "");
  return nullptr;
}

/** profileRead(handle) -> Float64Array [6]: device ms per phase summed over the forwards profiled so far (patch and time
    embedding, products, self-attention, cross-attention, norms/RoPE/elementwise, head; ssn_profile_read) */
napi_value ProfileRead(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  double ms[6] = {};
  if (ssn_profile_read(e, ms) != 0) return throwNative(env, "");
  napi_value buffer, array;
  void* data = nullptr;
  napi_create_arraybuffer(env, sizeof(ms), &data, &buffer);
  std::memcpy(data, ms, sizeof(ms));
  napi_create_typedarray(env, napi_float64_array, 6, buffer, 0, &array);
  return array;
}

/** forwardStats(handle, reset) -> { forwards, wallMs, issueMs, gpuMs, idleMs, graphLaunches, graphCaptures,
    graphFallback } (sums since the last reset; see ssn_forward_stats) */
napi_value ForwardStats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!getArgs(env, info, 2, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  bool reset = false;
  napi_get_value_bool(env, argv[1], &reset);
  double s[8] = {0};
  if (ssn_forward_stats(e, s, 8, reset ? 1 : 0) != 0) return throwNative(env, "");
  static const char* names[8] = {"forwards", "wallMs", "issueMs", "gpuMs", "idleMs", "graphLaunches", "graphCaptures", "graphFallback"};
  napi_value obj, v;
  NAPI_CALL(env, napi_create_object(env, &obj));
  for (int i = 0; i < 8; i++) {
    napi_create_double(env, s[i], &v);
    napi_set_named_property(env, obj, names[i], v);
  }
  return obj;
}

/** (handle, mode): an engine setting through the C API setter `set`; throws the engine's error where it fails. */
napi_value SetEngineMode(napi_env env, napi_callback_info info, int (*set)(ssn_engine*, int)) {
  napi_value argv[2];
  if (!getArgs(env, info, 2, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  if (set(e, getInt(env, argv[1])) != 0) return throwNative(env, "");
  return nullptr;
}

/** setCudaGraphs(handle, mode 0 off | 1 on) */
napi_value SetCudaGraphs(napi_env env, napi_callback_info info) { return SetEngineMode(env, info, ssn_set_cuda_graphs); }

/** setAttentionPrecision(handle, mode 0 exact | 1 fp8) */
napi_value SetAttentionPrecision(napi_env env, napi_callback_info info) {
  return SetEngineMode(env, info, ssn_set_attention_precision);
}

/** setProductPrecision(handle, mode 0 storage type | 1 fp8) */
napi_value SetProductPrecision(napi_env env, napi_callback_info info) {
  return SetEngineMode(env, info, ssn_set_product_precision);
}

/** setAttentionKernel(handle, mode 0 auto | 1 cudnn | 2 hopper) */
napi_value SetAttentionKernel(napi_env env, napi_callback_info info) {
  return SetEngineMode(env, info, ssn_set_attention_kernel);
}

/** attentionKernel(handle) -> 0 own FA2-style kernel | 1 cuDNN | 2 own Hopper kernel (what exact attention runs on) */
napi_value AttentionKernel(napi_env env, napi_callback_info info) {
  int kernel = 0;
  if (!readEngineInt(env, info, ssn_attention_kernel, &kernel)) return nullptr;
  napi_value v;
  NAPI_CALL(env, napi_create_int32(env, kernel, &v));
  return v;
}

/** attentionPlans(handle) -> { built, ms, reused } (cuDNN plans: built by this engine, found built by another) */
napi_value AttentionPlans(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  int built = 0, reused = 0;
  double ms = 0;
  if (ssn_attention_plans(e, &built, &ms) != 0 || ssn_attention_plans_reused(e, &reused) != 0) return throwNative(env, "");
  napi_value obj, v;
  NAPI_CALL(env, napi_create_object(env, &obj));
  napi_create_int32(env, built, &v);
  napi_set_named_property(env, obj, "built", v);
  napi_create_double(env, ms, &v);
  napi_set_named_property(env, obj, "ms", v);
  napi_create_int32(env, reused, &v);
  napi_set_named_property(env, obj, "reused", v);
  return obj;
}

/** denoiseSteps(handle, x, frames, framePositions, sigmas Float64Array, noises Float32Array | null, samplePrediction,
    sigmaFloor, flowScratch, x0Out) -> Promise (ssn_denoise_steps) */
napi_value DenoiseSteps(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!getArgs(env, info, 10, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  float *x, *flow, *x0, *noises = nullptr;
  int32_t* fp;
  size_t nx, nf, nflow, nx0, nn = 0;
  if (!getTyped(env, argv[1], napi_float32_array, &x, &nx)) return nullptr;
  if (!getTyped(env, argv[3], napi_int32_array, &fp, &nf)) return nullptr;
  if (!getTyped(env, argv[8], napi_float32_array, &flow, &nflow)) return nullptr;
  if (!getTyped(env, argv[9], napi_float32_array, &x0, &nx0)) return nullptr;
  napi_valuetype noisesType;
  napi_typeof(env, argv[5], &noisesType);
  if (noisesType != napi_null && !getTyped(env, argv[5], napi_float32_array, &noises, &nn)) return nullptr;
  bool isSigmas = false;
  napi_is_typedarray(env, argv[4], &isSigmas);
  napi_typedarray_type type;
  void* sigmasPtr = nullptr;
  size_t steps = 0, off = 0;
  napi_value buf;
  const int frames = getInt(env, argv[2]);
  if (!isSigmas || napi_get_typedarray_info(env, argv[4], &type, &steps, &sigmasPtr, &buf, &off) != napi_ok ||
      type != napi_float64_array || steps == 0 || frames <= 0 || nf != static_cast<size_t>(frames) || nflow != nx ||
      nx0 != nx || (noises && nn != (steps - 1) * nx)) {
    napi_throw_type_error(env, "ERR_ARGUMENT",
                          "denoiseSteps: expected a Float64Array of sigmas (at least one), a frame position per frame, flow "
                          "and x0 arrays of the latent's size, and noises of (steps - 1) latents or null");
    return nullptr;
  }
  bool sample = false;
  napi_get_value_bool(env, argv[6], &sample);
  double floor = 0;
  napi_get_value_double(env, argv[7], &floor);
  const auto* sigmas = static_cast<const double*>(sigmasPtr);
  const int64_t size = static_cast<int64_t>(nx);
  std::vector<napi_value> keep{argv[1], argv[3], argv[4], argv[8], argv[9]};
  if (noises) keep.push_back(argv[5]);
  return startAsync(env, "ssn.denoiseSteps", keep, [=](int*) {
    return ssn_denoise_steps(e, x, size, frames, fp, sigmas, static_cast<int>(steps), noises, sample ? 1 : 0, floor, flow, x0);
  });
}

/** loopBlocks(handle, noise, frames, sigmas, framePositions, tokensPerFrame, gridWidth, blocks, sinkRows, out Float64Array [3 * blocks]) -> Promise */
napi_value LoopBlocks(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!getArgs(env, info, 10, argv)) return nullptr;
  ssn_engine* e = getEngine(env, argv[0]);
  if (!e) return nullptr;
  float *noise, *sigmas;
  int32_t* fp;
  size_t nn, ns, nf;
  if (!getTyped(env, argv[1], napi_float32_array, &noise, &nn)) return nullptr;
  if (!getTyped(env, argv[3], napi_float32_array, &sigmas, &ns)) return nullptr;
  if (!getTyped(env, argv[4], napi_int32_array, &fp, &nf)) return nullptr;
  const int frames = getInt(env, argv[2]), tpf = getInt(env, argv[5]), gridW = getInt(env, argv[6]);
  const int blocks = getInt(env, argv[7]), sink = getInt(env, argv[8]);
  bool is = false;
  napi_is_typedarray(env, argv[9], &is);
  napi_typedarray_type type;
  void* outPtr = nullptr;
  size_t no = 0, off = 0;
  napi_value buf;
  if (!is || napi_get_typedarray_info(env, argv[9], &type, &no, &outPtr, &buf, &off) != napi_ok || type != napi_float64_array ||
      no < static_cast<size_t>(3 * (blocks > 0 ? blocks : 0)) || nf < static_cast<size_t>(frames > 0 ? frames : 0)) {
    napi_throw_type_error(env, "ERR_ARGUMENT", "loopBlocks: expected a Float64Array of 3 * blocks and one frame position per frame");
    return nullptr;
  }
  auto* out = static_cast<double*>(outPtr);
  const int steps = static_cast<int>(ns);
  const int64_t size = static_cast<int64_t>(nn);
  return startAsync(env, "ssn.loopBlocks", {argv[1], argv[3], argv[4], argv[9]}, [=](int*) {
    return ssn_loop_blocks(e, noise, size, frames, sigmas, steps, fp, tpf, gridW, blocks, sink, out);
  });
}

// ---- The native decoders (TAEHV, Wan VAE): one binding, their C API functions as traits ----

template <typename T>
struct DecoderApi;

template <>
struct DecoderApi<ssn_taehv> {
  static constexpr uint32_t kMagic = 0x54414548;  // tells a decoder handle from an engine's
  static constexpr const char* kClosed = "native TAEHV decoder handle is closed or invalid";
  static constexpr const char* kFinalize = "ssn.taehvFinalize";
  static constexpr const char* kDecode = "ssn.taehvDecode";
  static constexpr const char* kReset = "ssn.taehvReset";
  static void destroy(ssn_taehv* t) { ssn_taehv_destroy(t); }
  static int setWeight(ssn_taehv* t, const char* key, const float* data, int64_t n) { return ssn_taehv_set_weight(t, key, data, n, 0); }
  static int finalize(ssn_taehv* t, int warmup) { return ssn_taehv_finalize(t, warmup); }
  static int decode(ssn_taehv* t, const float* latent, int frames, uint8_t* rgb, int64_t capacity, int* written) {
    return ssn_taehv_decode(t, latent, frames, rgb, capacity, written);
  }
  static int reset(ssn_taehv* t) { return ssn_taehv_reset(t); }
  static int describe(ssn_taehv* t, char* text, int size) { return ssn_taehv_describe(t, text, size); }
  static constexpr bool kDeviceBytes = false;  // TAEHV does not report its device memory
  static int info(ssn_taehv* t, int* width, int* height, int* plans, double* planMs, double* lastMs, int64_t*) {
    return ssn_taehv_info(t, width, height, plans, planMs, lastMs);
  }
};

template <>
struct DecoderApi<ssn_wanvae> {
  static constexpr uint32_t kMagic = 0x57414e56;  // tells a Wan VAE handle from the others
  static constexpr const char* kClosed = "native Wan VAE decoder handle is closed or invalid";
  static constexpr const char* kFinalize = "ssn.wanVaeFinalize";
  static constexpr const char* kDecode = "ssn.wanVaeDecode";
  static constexpr const char* kReset = "ssn.wanVaeReset";
  static void destroy(ssn_wanvae* t) { ssn_wanvae_destroy(t); }
  static int setWeight(ssn_wanvae* t, const char* key, const float* data, int64_t n) { return ssn_wanvae_set_weight(t, key, data, n, 0); }
  static int finalize(ssn_wanvae* t, int warmup) { return ssn_wanvae_finalize(t, warmup); }
  static int decode(ssn_wanvae* t, const float* latent, int frames, uint8_t* rgb, int64_t capacity, int* written) {
    return ssn_wanvae_decode(t, latent, frames, rgb, capacity, written);
  }
  static int reset(ssn_wanvae* t) { return ssn_wanvae_reset(t); }
  static int describe(ssn_wanvae* t, char* text, int size) { return ssn_wanvae_describe(t, text, size); }
  static constexpr bool kDeviceBytes = true;
  static int info(ssn_wanvae* t, int* width, int* height, int* plans, double* planMs, double* lastMs, int64_t* bytes) {
    return ssn_wanvae_info(t, width, height, plans, planMs, lastMs, bytes);
  }
};

template <typename T>
struct DecoderHandle {
  uint32_t magic = DecoderApi<T>::kMagic;
  T* decoder = nullptr;
};

/** The decoder behind a handle of kind T, or nullptr with ERR_CLOSED thrown. */
template <typename T>
T* getDecoder(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p || static_cast<DecoderHandle<T>*>(p)->magic != DecoderApi<T>::kMagic ||
      !static_cast<DecoderHandle<T>*>(p)->decoder) {
    napi_throw_error(env, "ERR_CLOSED", DecoderApi<T>::kClosed);
    return nullptr;
  }
  return static_cast<DecoderHandle<T>*>(p)->decoder;
}

/** A handle owning `t`: destroyed by decoderDestroy, or by the garbage collector. */
template <typename T>
napi_value wrapDecoder(napi_env env, T* t) {
  auto* h = new DecoderHandle<T>{};
  h->decoder = t;
  napi_value ext;
  NAPI_CALL(env, napi_create_external(
                     env, h,
                     [](napi_env, void* data, void*) {
                       auto* hh = static_cast<DecoderHandle<T>*>(data);
                       if (hh->decoder) DecoderApi<T>::destroy(hh->decoder);
                       delete hh;
                     },
                     nullptr, &ext));
  return ext;
}

/** <kind>Destroy(handle): frees the decoder now; a closed handle is left as it is. */
template <typename T>
napi_value DecoderDestroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) == napi_ok && p && static_cast<DecoderHandle<T>*>(p)->magic == DecoderApi<T>::kMagic) {
    auto* h = static_cast<DecoderHandle<T>*>(p);
    if (h->decoder) DecoderApi<T>::destroy(h->decoder);
    h->decoder = nullptr;
  }
  return nullptr;
}

/** <kind>SetWeight(handle, key, Float32Array) — synchronous (load time). */
template <typename T>
napi_value DecoderSetWeight(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv)) return nullptr;
  T* t = getDecoder<T>(env, argv[0]);
  if (!t) return nullptr;
  const std::string key = getString(env, argv[1]);
  float* data;
  size_t n;
  if (!getTyped(env, argv[2], napi_float32_array, &data, &n)) return nullptr;
  if (DecoderApi<T>::setWeight(t, key.c_str(), data, static_cast<int64_t>(n)) != 0) return throwNative(env, "");
  return nullptr;
}

/** <kind>Finalize(handle, warmupFrames) -> Promise (lays the weights out; plans the convolutions on blocks of zeros) */
template <typename T>
napi_value DecoderFinalize(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!getArgs(env, info, 2, argv)) return nullptr;
  T* t = getDecoder<T>(env, argv[0]);
  if (!t) return nullptr;
  const int warmup = getInt(env, argv[1]);
  return startAsync(env, DecoderApi<T>::kFinalize, {}, [=](int*) { return DecoderApi<T>::finalize(t, warmup); });
}

/** <kind>Decode(handle, latent Float32Array [C, F, H, W], frames, out Uint8Array) -> Promise<frames written> */
template <typename T>
napi_value DecoderDecode(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!getArgs(env, info, 4, argv)) return nullptr;
  T* t = getDecoder<T>(env, argv[0]);
  if (!t) return nullptr;
  float* latent;
  size_t nl;
  if (!getTyped(env, argv[1], napi_float32_array, &latent, &nl)) return nullptr;
  const int frames = getInt(env, argv[2]);
  bool is = false;
  napi_is_typedarray(env, argv[3], &is);
  napi_typedarray_type type;
  void* out = nullptr;
  size_t no = 0, off = 0;
  napi_value buf;
  if (!is || napi_get_typedarray_info(env, argv[3], &type, &no, &out, &buf, &off) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_ARGUMENT", "expected a Uint8Array");
    return nullptr;
  }
  const int64_t capacity = static_cast<int64_t>(no);
  auto* rgb = static_cast<uint8_t*>(out);
  return startAsync(env, DecoderApi<T>::kDecode, {argv[1], argv[3]},
                    [=](int* result) { return DecoderApi<T>::decode(t, latent, frames, rgb, capacity, result); });
}

template <typename T>
napi_value DecoderReset(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  T* t = getDecoder<T>(env, argv[0]);
  if (!t) return nullptr;
  return startAsync(env, DecoderApi<T>::kReset, {}, [=](int*) { return DecoderApi<T>::reset(t); });
}

/** <kind>Info(handle) -> { width, height, plans, planMs, lastMs, deviceBytes (Wan VAE), provider } */
template <typename T>
napi_value DecoderInfo(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, 1, argv)) return nullptr;
  T* t = getDecoder<T>(env, argv[0]);
  if (!t) return nullptr;
  int width = 0, height = 0, plans = 0;
  double planMs = 0, lastMs = 0;
  int64_t bytes = 0;
  char text[512];
  if (DecoderApi<T>::info(t, &width, &height, &plans, &planMs, &lastMs, &bytes) != 0) return throwNative(env, "");
  if (DecoderApi<T>::describe(t, text, sizeof text) != 0) return throwNative(env, "");
  napi_value obj, v;
  napi_create_object(env, &obj);
  napi_create_int32(env, width, &v);
  napi_set_named_property(env, obj, "width", v);
  napi_create_int32(env, height, &v);
  napi_set_named_property(env, obj, "height", v);
  napi_create_int32(env, plans, &v);
  napi_set_named_property(env, obj, "plans", v);
  napi_create_double(env, planMs, &v);
  napi_set_named_property(env, obj, "planMs", v);
  napi_create_double(env, lastMs, &v);
  napi_set_named_property(env, obj, "lastMs", v);
  if (DecoderApi<T>::kDeviceBytes) {
    napi_create_double(env, static_cast<double>(bytes), &v);
    napi_set_named_property(env, obj, "deviceBytes", v);
  }
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "provider", v);
  return obj;
}

/** createTaehv({latentChannels, latentHeight, latentWidth, channels: [4]}, device, precision 0 bf16 | 1 fp32 | 2 fp16) */
napi_value CreateTaehv(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv)) return nullptr;
  ssn_taehv_dims d{};
  d.latent_channels = prop(env, argv[0], "latentChannels");
  d.latent_height = prop(env, argv[0], "latentHeight");
  d.latent_width = prop(env, argv[0], "latentWidth");
  napi_value arr;
  napi_get_named_property(env, argv[0], "channels", &arr);
  for (uint32_t i = 0; i < 4; i++) {
    napi_value v;
    napi_get_element(env, arr, i, &v);
    d.channels[i] = getInt(env, v);
  }
  ssn_taehv* t = nullptr;
  if (ssn_taehv_create(&d, getInt(env, argv[1]), getInt(env, argv[2]), &t) != 0) return throwNative(env, "");
  return wrapDecoder(env, t);
}

/** createWanVae({dim, zDim, latentHeight, latentWidth}, device, precision 0 bf16 | 1 fp32 | 2 fp16) */
napi_value CreateWanVae(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!getArgs(env, info, 3, argv)) return nullptr;
  ssn_wanvae_dims d{};
  d.dim = prop(env, argv[0], "dim");
  d.z_dim = prop(env, argv[0], "zDim");
  d.latent_height = prop(env, argv[0], "latentHeight");
  d.latent_width = prop(env, argv[0], "latentWidth");
  ssn_wanvae* t = nullptr;
  if (ssn_wanvae_create(&d, getInt(env, argv[1]), getInt(env, argv[2]), &t) != 0) return throwNative(env, "");
  return wrapDecoder(env, t);
}

#define EXPORT(name, fn)                                                         \
  do {                                                                           \
    napi_value f;                                                                \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &f);          \
    napi_set_named_property(env, exports, name, f);                              \
  } while (0)

napi_value Init(napi_env env, napi_value exports) {
  EXPORT("abiVersion", AbiVersion);
  EXPORT("deviceCount", DeviceCount);
  EXPORT("deviceName", DeviceName);
  EXPORT("createEngine", CreateEngine);
  EXPORT("createPipeline", CreatePipeline);
  EXPORT("attentionBackend", AttentionBackend);
  EXPORT("weightsShared", WeightsShared);
  EXPORT("destroy", Destroy);
  EXPORT("setWeight", SetWeight);
  EXPORT("finalize", Finalize);
  EXPORT("setPrompt", SetPrompt);
  EXPORT("forward", Forward);
  EXPORT("forwardBatch", ForwardBatch);
  EXPORT("updateCache", UpdateCache);
  EXPORT("scoreCache", ScoreCache);
  EXPORT("releaseQueries", ReleaseQueries);
  EXPORT("resetCache", ResetCache);
  EXPORT("cacheInfo", CacheInfo);
  EXPORT("readCache", ReadCache);
  EXPORT("profile", Profile);
  EXPORT("profileRead", ProfileRead);
  EXPORT("forwardStats", ForwardStats);
  EXPORT("setCudaGraphs", SetCudaGraphs);
  EXPORT("setAttentionPrecision", SetAttentionPrecision);
  EXPORT("setProductPrecision", SetProductPrecision);
  EXPORT("attentionPlans", AttentionPlans);
  EXPORT("setAttentionKernel", SetAttentionKernel);
  EXPORT("attentionKernel", AttentionKernel);
  EXPORT("loopBlocks", LoopBlocks);
  EXPORT("denoiseSteps", DenoiseSteps);
  EXPORT("createTaehv", CreateTaehv);
  EXPORT("taehvDestroy", DecoderDestroy<ssn_taehv>);
  EXPORT("taehvSetWeight", DecoderSetWeight<ssn_taehv>);
  EXPORT("taehvFinalize", DecoderFinalize<ssn_taehv>);
  EXPORT("taehvDecode", DecoderDecode<ssn_taehv>);
  EXPORT("taehvReset", DecoderReset<ssn_taehv>);
  EXPORT("taehvInfo", DecoderInfo<ssn_taehv>);
  EXPORT("createWanVae", CreateWanVae);
  EXPORT("wanVaeDestroy", DecoderDestroy<ssn_wanvae>);
  EXPORT("wanVaeSetWeight", DecoderSetWeight<ssn_wanvae>);
  EXPORT("wanVaeFinalize", DecoderFinalize<ssn_wanvae>);
  EXPORT("wanVaeDecode", DecoderDecode<ssn_wanvae>);
  EXPORT("wanVaeReset", DecoderReset<ssn_wanvae>);
  EXPORT("wanVaeInfo", DecoderInfo<ssn_wanvae>);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
