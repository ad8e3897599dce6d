#include "cudnn-sdpa.h"
#include "cudnn-library.h"

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

// The few backend-API names this file uses, with cuDNN 9's values: cuDNN is loaded at run time, so its headers
// are not needed to build. Where they are present, the values are checked against them below.
namespace ssn {
namespace cudnn {
using Status = int;
using Desc = void*;
enum : int {  // descriptor types
  kTensor = 17, kOpSdpaFwd = 41, kOpGraph = 15, kEngineHeur = 4, kEngineCfg = 3, kExecutionPlan = 5, kVariantPack = 16
};
enum : int {  // attribute names
  kTensorByteAlignment = 900, kTensorDataType = 901, kTensorDimensions = 902, kTensorStrides = 903,
  kTensorUniqueId = 906, kTensorIsByValue = 908,
  kSdpaQ = 2800, kSdpaK = 2801, kSdpaV = 2802, kSdpaO = 2803, kSdpaScale = 2805,
  kOpGraphHandle = 800, kOpGraphOps = 801,
  kHeurMode = 200, kHeurOpGraph = 201, kHeurResults = 202,
  kPlanEngineConfig = 401, kPlanWorkspaceSize = 402,
  kPackUniqueIds = 1000, kPackDataPointers = 1001, kPackWorkspace = 1003
};
enum : int {  // attribute types
  kTypeHandle = 0, kTypeDataType = 1, kTypeBoolean = 2, kTypeInt64 = 3, kTypeVoidPtr = 6, kTypeHeurMode = 8,
  kTypeBackendDescriptor = 15
};
enum : int { kDataFloat = 0, kDataBfloat16 = 9 };
enum : int { kHeurModeA = 3 };
}  // namespace cudnn
}  // namespace ssn

#if __has_include(<cudnn_graph.h>)
#include <cudnn_graph.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wenum-compare"
static_assert(ssn::cudnn::kTensor == CUDNN_BACKEND_TENSOR_DESCRIPTOR && ssn::cudnn::kOpGraph == CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR &&
              ssn::cudnn::kEngineHeur == CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR && ssn::cudnn::kEngineCfg == CUDNN_BACKEND_ENGINECFG_DESCRIPTOR &&
              ssn::cudnn::kExecutionPlan == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR && ssn::cudnn::kVariantPack == CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
static_assert(ssn::cudnn::kTensorByteAlignment == CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT && ssn::cudnn::kTensorDataType == CUDNN_ATTR_TENSOR_DATA_TYPE &&
              ssn::cudnn::kTensorDimensions == CUDNN_ATTR_TENSOR_DIMENSIONS && ssn::cudnn::kTensorStrides == CUDNN_ATTR_TENSOR_STRIDES &&
              ssn::cudnn::kTensorUniqueId == CUDNN_ATTR_TENSOR_UNIQUE_ID && ssn::cudnn::kTensorIsByValue == CUDNN_ATTR_TENSOR_IS_BY_VALUE);
static_assert(ssn::cudnn::kOpGraphOps == CUDNN_ATTR_OPERATIONGRAPH_OPS && ssn::cudnn::kHeurMode == CUDNN_ATTR_ENGINEHEUR_MODE &&
              ssn::cudnn::kHeurOpGraph == CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH && ssn::cudnn::kHeurResults == CUDNN_ATTR_ENGINEHEUR_RESULTS &&
              ssn::cudnn::kPlanEngineConfig == CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG &&
              ssn::cudnn::kPlanWorkspaceSize == CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE &&
              ssn::cudnn::kPackUniqueIds == CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS && ssn::cudnn::kPackDataPointers == CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS &&
              ssn::cudnn::kPackWorkspace == CUDNN_ATTR_VARIANT_PACK_WORKSPACE);
static_assert(ssn::cudnn::kTypeHandle == CUDNN_TYPE_HANDLE && ssn::cudnn::kTypeDataType == CUDNN_TYPE_DATA_TYPE &&
              ssn::cudnn::kTypeBoolean == CUDNN_TYPE_BOOLEAN && ssn::cudnn::kTypeInt64 == CUDNN_TYPE_INT64 &&
              ssn::cudnn::kTypeVoidPtr == CUDNN_TYPE_VOID_PTR && ssn::cudnn::kTypeHeurMode == CUDNN_TYPE_HEUR_MODE &&
              ssn::cudnn::kTypeBackendDescriptor == CUDNN_TYPE_BACKEND_DESCRIPTOR);
static_assert(ssn::cudnn::kDataFloat == CUDNN_DATA_FLOAT && ssn::cudnn::kDataBfloat16 == CUDNN_DATA_BFLOAT16 &&
              ssn::cudnn::kHeurModeA == CUDNN_HEUR_MODE_A);
#if CUDNN_MAJOR > 9 || (CUDNN_MAJOR == 9 && CUDNN_MINOR >= 13)
static_assert(ssn::cudnn::kOpSdpaFwd == CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR && ssn::cudnn::kSdpaQ == CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC &&
              ssn::cudnn::kSdpaK == CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC && ssn::cudnn::kSdpaV == CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC &&
              ssn::cudnn::kSdpaO == CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC && ssn::cudnn::kSdpaScale == CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC);
#endif
#pragma GCC diagnostic pop
#endif

namespace ssn {
namespace {

struct Api {
  size_t (*getVersion)();
  const char* (*getErrorString)(cudnn::Status);
  void (*getLastErrorString)(char*, size_t);
  cudnn::Status (*create)(void**);
  cudnn::Status (*destroy)(void*);
  cudnn::Status (*setStream)(void*, cudaStream_t);
  cudnn::Status (*createDescriptor)(int, cudnn::Desc*);
  cudnn::Status (*destroyDescriptor)(cudnn::Desc);
  cudnn::Status (*finalize)(cudnn::Desc);
  cudnn::Status (*setAttribute)(cudnn::Desc, int, int, int64_t, const void*);
  cudnn::Status (*getAttribute)(cudnn::Desc, int, int, int64_t, int64_t*, void*);
  cudnn::Status (*execute)(void*, cudnn::Desc, cudnn::Desc);
  std::string library;
  std::string error;  // why it is not loaded
};

const Api& api() {
  static Api a{};
  static std::once_flag once;
  std::call_once(once, [] {
    const CudnnLibrary opened = openCudnnLibrary();
    void* lib = opened.handle;
    a.library = opened.name;
    if (!lib) {
      a.error = opened.error;
      return;
    }
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn) ok = false;
    };
    sym(a.getVersion, "cudnnGetVersion");
    sym(a.getErrorString, "cudnnGetErrorString");
    sym(a.getLastErrorString, "cudnnGetLastErrorString");
    sym(a.create, "cudnnCreate");
    sym(a.destroy, "cudnnDestroy");
    sym(a.setStream, "cudnnSetStream");
    sym(a.createDescriptor, "cudnnBackendCreateDescriptor");
    sym(a.destroyDescriptor, "cudnnBackendDestroyDescriptor");
    sym(a.finalize, "cudnnBackendFinalize");
    sym(a.setAttribute, "cudnnBackendSetAttribute");
    sym(a.getAttribute, "cudnnBackendGetAttribute");
    sym(a.execute, "cudnnBackendExecute");
    if (!ok) {
      a.error = a.library + " lacks the cuDNN 9 backend API";
      a.getVersion = nullptr;
      return;
    }
    if (a.getVersion() < 91300) {
      a.error = a.library + " is cuDNN " + std::to_string(a.getVersion()) + "; its SDPA operation needs 9.13 or later";
      a.getVersion = nullptr;
    }
  });
  return a;
}

std::string lastError(const Api& a, cudnn::Status s) {
  char buf[512] = {0};
  a.getLastErrorString(buf, sizeof buf);
  return std::string(a.getErrorString(s)) + (buf[0] ? std::string(": ") + buf : "");
}

void check(cudnn::Status s, const char* what) {
  if (s != 0) throw NativeError(std::string("cuDNN ") + what + " failed: " + lastError(api(), s));
}

/** Owns one backend descriptor. */
struct Descriptor {
  cudnn::Desc d = nullptr;
  explicit Descriptor(int type) { check(api().createDescriptor(type, &d), "create descriptor"); }
  ~Descriptor() {
    if (d) api().destroyDescriptor(d);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  cudnn::Desc release() {
    cudnn::Desc r = d;
    d = nullptr;
    return r;
  }
  cudnn::Status set(int name, int type, int64_t n, const void* values) { return api().setAttribute(d, name, type, n, values); }
};

enum Uid : int64_t { kQ = 1, kK = 2, kV = 3, kO = 4, kScale = 5 };

/** [1, heads, rows, headDim] over rows of `stride` elements (token-major, heads side by side). */
std::unique_ptr<Descriptor> tensor(int64_t uid, int dtype, int rows, int heads, int headDim, int stride) {
  auto t = std::make_unique<Descriptor>(cudnn::kTensor);
  const int64_t dims[4] = {1, heads, rows, headDim};
  const int64_t strides[4] = {(int64_t)rows * stride, headDim, stride, 1};
  const int64_t alignment = 16;
  check(t->set(cudnn::kTensorDataType, cudnn::kTypeDataType, 1, &dtype), "tensor data type");
  check(t->set(cudnn::kTensorDimensions, cudnn::kTypeInt64, 4, dims), "tensor dimensions");
  check(t->set(cudnn::kTensorStrides, cudnn::kTypeInt64, 4, strides), "tensor strides");
  check(t->set(cudnn::kTensorUniqueId, cudnn::kTypeInt64, 1, &uid), "tensor id");
  check(t->set(cudnn::kTensorByteAlignment, cudnn::kTypeInt64, 1, &alignment), "tensor alignment");
  check(api().finalize(t->d), "tensor finalize");
  return t;
}

std::unique_ptr<Descriptor> scalar(int64_t uid) {
  auto t = std::make_unique<Descriptor>(cudnn::kTensor);
  const int64_t ones[4] = {1, 1, 1, 1};
  const int dtype = cudnn::kDataFloat;
  const int64_t alignment = 16;
  const bool byValue = true;
  check(t->set(cudnn::kTensorDataType, cudnn::kTypeDataType, 1, &dtype), "scale data type");
  check(t->set(cudnn::kTensorDimensions, cudnn::kTypeInt64, 4, ones), "scale dimensions");
  check(t->set(cudnn::kTensorStrides, cudnn::kTypeInt64, 4, ones), "scale strides");
  check(t->set(cudnn::kTensorUniqueId, cudnn::kTypeInt64, 1, &uid), "scale id");
  check(t->set(cudnn::kTensorByteAlignment, cudnn::kTypeInt64, 1, &alignment), "scale alignment");
  check(t->set(cudnn::kTensorIsByValue, cudnn::kTypeBoolean, 1, &byValue), "scale by value");
  check(api().finalize(t->d), "scale finalize");
  return t;
}

enum class Mode { Auto, Kernel, Cudnn };
Mode mode() {
  const char* env = std::getenv("SSN_ATTENTION");
  if (!env || !*env || !std::strcmp(env, "auto")) return Mode::Auto;
  if (!std::strcmp(env, "kernel")) return Mode::Kernel;
  if (!std::strcmp(env, "cudnn")) return Mode::Cudnn;
  throw NativeError(std::string("SSN_ATTENTION must be auto, kernel or cudnn, got '") + env + "'");
}

}  // namespace

std::string CudnnSdpa::describe() {
  if (mode() == Mode::Kernel) return "own kernel (SSN_ATTENTION=kernel)";
  const Api& a = api();
  if (!a.getVersion) return a.error;
  const size_t v = a.getVersion();
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100) +
         " (" + a.library + ")";
}

struct SdpaDevicePlans {
  struct Plan {
    void* plan = nullptr;  // execution plan descriptor, or nullptr: cuDNN has no engine for this shape
    int64_t workspace = 0;
  };
  using Key = std::tuple<int, int, int, int, int, int, int>;
  void* handle = nullptr;
  std::mutex mutex;  // plans, and the handle's stream from cudnnSetStream to the end of cudnnBackendExecute
  std::map<Key, Plan> plans;
};

namespace {

/** The device's shared plans (created with its cuDNN handle on first use; never freed: engines come and go, the
    process keeps what it built). nullptr when the handle cannot be created. */
SdpaDevicePlans* devicePlans(int device) {
  static std::mutex m;
  static std::map<int, SdpaDevicePlans*> byDevice;
  std::lock_guard<std::mutex> lock(m);
  auto it = byDevice.find(device);
  if (it != byDevice.end()) return it->second;
  CUDA_CHECK(cudaSetDevice(device));
  void* handle = nullptr;
  if (api().create(&handle) != 0) return nullptr;
  auto* d = new SdpaDevicePlans();
  d->handle = handle;
  byDevice[device] = d;
  return d;
}

/** One plan for the shape, or {} where cuDNN has none (heuristics' configurations tried in order). */
SdpaDevicePlans::Plan buildPlan(void* handle, int lq, int lk, int heads, int headDim, int qStride, int kvStride, int oStride) {
  const Api& a = api();
  const int bf = cudnn::kDataBfloat16;
  auto q = tensor(kQ, bf, lq, heads, headDim, qStride);
  auto k = tensor(kK, bf, lk, heads, headDim, kvStride);
  auto v = tensor(kV, bf, lk, heads, headDim, kvStride);
  auto o = tensor(kO, bf, lq, heads, headDim, oStride);
  auto scale = scalar(kScale);

  Descriptor op(cudnn::kOpSdpaFwd);
  check(op.set(cudnn::kSdpaQ, cudnn::kTypeBackendDescriptor, 1, &q->d), "SDPA q");
  check(op.set(cudnn::kSdpaK, cudnn::kTypeBackendDescriptor, 1, &k->d), "SDPA k");
  check(op.set(cudnn::kSdpaV, cudnn::kTypeBackendDescriptor, 1, &v->d), "SDPA v");
  check(op.set(cudnn::kSdpaO, cudnn::kTypeBackendDescriptor, 1, &o->d), "SDPA o");
  check(op.set(cudnn::kSdpaScale, cudnn::kTypeBackendDescriptor, 1, &scale->d), "SDPA scale");
  if (a.finalize(op.d) != 0) return {};  // this cuDNN does not take the shape (e.g. head size)

  Descriptor graph(cudnn::kOpGraph);
  check(graph.set(cudnn::kOpGraphOps, cudnn::kTypeBackendDescriptor, 1, &op.d), "graph ops");
  check(graph.set(cudnn::kOpGraphHandle, cudnn::kTypeHandle, 1, &handle), "graph handle");
  if (a.finalize(graph.d) != 0) return {};

  Descriptor heur(cudnn::kEngineHeur);
  const int heurMode = cudnn::kHeurModeA;
  check(heur.set(cudnn::kHeurOpGraph, cudnn::kTypeBackendDescriptor, 1, &graph.d), "heuristics graph");
  check(heur.set(cudnn::kHeurMode, cudnn::kTypeHeurMode, 1, &heurMode), "heuristics mode");
  if (a.finalize(heur.d) != 0) return {};
  constexpr int kMaxConfigs = 8;
  std::vector<std::unique_ptr<Descriptor>> configs;
  cudnn::Desc raw[kMaxConfigs];
  for (int i = 0; i < kMaxConfigs; i++) {
    configs.push_back(std::make_unique<Descriptor>(cudnn::kEngineCfg));
    raw[i] = configs.back()->d;
  }
  int64_t found = 0;
  if (a.getAttribute(heur.d, cudnn::kHeurResults, cudnn::kTypeBackendDescriptor, kMaxConfigs, &found, raw) != 0) return {};
  for (int64_t i = 0; i < found && i < kMaxConfigs; i++) {
    Descriptor plan(cudnn::kExecutionPlan);
    check(plan.set(cudnn::kPlanEngineConfig, cudnn::kTypeBackendDescriptor, 1, &raw[i]), "plan config");
    if (a.finalize(plan.d) != 0) continue;  // the next configuration, in the heuristics' order
    SdpaDevicePlans::Plan p;
    int64_t n = 0;
    check(a.getAttribute(plan.d, cudnn::kPlanWorkspaceSize, cudnn::kTypeInt64, 1, &n, &p.workspace), "plan workspace");
    p.plan = plan.release();
    return p;
  }
  return {};
}

}  // namespace

std::unique_ptr<CudnnSdpa> CudnnSdpa::create(int device) {
  const Mode m = mode();
  if (m == Mode::Kernel) return nullptr;
  const Api& a = api();
  if (!a.getVersion) {
    if (m == Mode::Cudnn) throw NativeError("SSN_ATTENTION=cudnn, but " + a.error);
    return nullptr;
  }
  SdpaDevicePlans* plans = devicePlans(device);
  if (!plans) {
    if (m == Mode::Cudnn) throw NativeError("SSN_ATTENTION=cudnn, but cudnnCreate failed on device " + std::to_string(device));
    return nullptr;
  }
  return std::unique_ptr<CudnnSdpa>(new CudnnSdpa(plans));
}

CudnnSdpa::~CudnnSdpa() = default;  // the plans and the handle are the device's

bool CudnnSdpa::run(const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int heads, int headDim,
                    int qStride, int kvStride, int oStride, float scale, cudaStream_t stream) {
  if (lq == 0 || lk == 0) return false;
  // 16-byte alignment of every row start, as the tensors declare
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (qStride % 8 || kvStride % 8 || oStride % 8 || !aligned(q) || !aligned(k) || !aligned(v) || !aligned(o)) return false;
  const SdpaDevicePlans::Key key{lq, lk, heads, headDim, qStride, kvStride, oStride};
  const bool firstHere = seen_.insert(key).second;
  std::lock_guard<std::mutex> lock(device_->mutex);
  auto it = device_->plans.find(key);
  if (it == device_->plans.end()) {
    const auto t0 = std::chrono::steady_clock::now();
    SdpaDevicePlans::Plan p = buildPlan(device_->handle, lq, lk, heads, headDim, qStride, kvStride, oStride);
    planMs_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (p.plan) plansBuilt_++;
    it = device_->plans.emplace(key, p).first;
  } else if (firstHere && it->second.plan) {
    plansReused_++;
  }
  const SdpaDevicePlans::Plan& p = it->second;
  if (!p.plan) return false;
  // Grows only on a shape's first run here (never while a CUDA graph is being captured: a shape is captured after
  // it ran once directly).
  if (p.workspace > 0) workspace_.reserve(static_cast<size_t>(p.workspace));
  const Api& a = api();
  check(a.setStream(device_->handle, stream), "set stream");
  Descriptor pack(cudnn::kVariantPack);
  const int64_t uids[5] = {kQ, kK, kV, kO, kScale};
  void* ptrs[5] = {const_cast<bf16*>(q), const_cast<bf16*>(k), const_cast<bf16*>(v), o, &scale};
  void* ws = workspace_.ptr;
  check(pack.set(cudnn::kPackUniqueIds, cudnn::kTypeInt64, 5, uids), "variant pack ids");
  check(pack.set(cudnn::kPackDataPointers, cudnn::kTypeVoidPtr, 5, ptrs), "variant pack pointers");
  check(pack.set(cudnn::kPackWorkspace, cudnn::kTypeVoidPtr, 1, &ws), "variant pack workspace");
  check(a.finalize(pack.d), "variant pack finalize");
  check(a.execute(device_->handle, p.plan, pack.d), "SDPA execute");
  return true;
}

}  // namespace ssn
