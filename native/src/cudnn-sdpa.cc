#include "cudnn-sdpa.h"
#include "cudnn-library.h"
#include "key-split.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
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
  kTensor = 17, kOpSdpaFwd = 41, kOpGraph = 15, kEngineHeur = 4, kEngineCfg = 3, kExecutionPlan = 5, kVariantPack = 16,
  kPointwise = 0, kOpPointwise = 13, kMatmul = 18, kOpMatmul = 19, kReduction = 21, kOpReduction = 22,
  kEngine = 2, kKnobChoice = 7, kKnobInfo = 8
};
enum : int {  // attribute names
  kTensorByteAlignment = 900, kTensorDataType = 901, kTensorDimensions = 902, kTensorStrides = 903,
  kTensorUniqueId = 906, kTensorIsVirtual = 907, kTensorIsByValue = 908,
  kSdpaQ = 2800, kSdpaK = 2801, kSdpaV = 2802, kSdpaO = 2803, kSdpaStats = 2804, kSdpaScale = 2805,
  kOpGraphHandle = 800, kOpGraphOps = 801,
  kHeurMode = 200, kHeurOpGraph = 201, kHeurResults = 202,
  kPlanEngineConfig = 401, kPlanWorkspaceSize = 402,
  kEngineCfgEngine = 300, kEngineCfgKnobChoices = 302, kKnobChoiceType = 600, kKnobChoiceValue = 601,
  kKnobInfoType = 1200, kKnobInfoMax = 1201, kKnobInfoMin = 1202, kKnobInfoStride = 1203,
  kEngineGlobalIndex = 1301, kEngineKnobInfo = 1302,
  kPackUniqueIds = 1000, kPackDataPointers = 1001, kPackWorkspace = 1003,
  kPointwiseMode = 0, kPointwiseMathPrec = 1,
  kOpPointwiseDesc = 750, kOpPointwiseX = 751, kOpPointwiseB = 752, kOpPointwiseY = 753,
  kMatmulCompType = 1500, kOpMatmulA = 1520, kOpMatmulB = 1521, kOpMatmulC = 1522, kOpMatmulDesc = 1523,
  kReductionOperator = 1600, kReductionCompType = 1601, kOpReductionX = 1610, kOpReductionY = 1611, kOpReductionDesc = 1612
};
enum : int {  // attribute types
  kTypeHandle = 0, kTypeDataType = 1, kTypeBoolean = 2, kTypeInt64 = 3, kTypeVoidPtr = 6, kTypeHeurMode = 8, kTypeKnobType = 9,
  kTypePointwiseMode = 14, kTypeBackendDescriptor = 15, kTypeReductionOperator = 18
};
enum : int { kDataFloat = 0, kDataBfloat16 = 9, kDataFp8E4m3 = 12 };
enum : int { kHeurModeA = 3 };
enum : int { kPwAdd = 0, kPwMul = 1, kPwDiv = 6, kPwSub = 9, kPwExp = 13, kPwLog = 15 };  // pointwise modes
enum : int { kReduceAdd = 0, kReduceMax = 3, kReduceAmax = 4 };                          // reduction operators
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
static_assert(ssn::cudnn::kPointwise == CUDNN_BACKEND_POINTWISE_DESCRIPTOR && ssn::cudnn::kOpPointwise == CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR &&
              ssn::cudnn::kMatmul == CUDNN_BACKEND_MATMUL_DESCRIPTOR && ssn::cudnn::kOpMatmul == CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR &&
              ssn::cudnn::kReduction == CUDNN_BACKEND_REDUCTION_DESCRIPTOR && ssn::cudnn::kOpReduction == CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
static_assert(ssn::cudnn::kTensorIsVirtual == CUDNN_ATTR_TENSOR_IS_VIRTUAL && ssn::cudnn::kPointwiseMode == CUDNN_ATTR_POINTWISE_MODE &&
              ssn::cudnn::kPointwiseMathPrec == CUDNN_ATTR_POINTWISE_MATH_PREC &&
              ssn::cudnn::kOpPointwiseDesc == CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR &&
              ssn::cudnn::kOpPointwiseX == CUDNN_ATTR_OPERATION_POINTWISE_XDESC && ssn::cudnn::kOpPointwiseB == CUDNN_ATTR_OPERATION_POINTWISE_BDESC &&
              ssn::cudnn::kOpPointwiseY == CUDNN_ATTR_OPERATION_POINTWISE_YDESC && ssn::cudnn::kMatmulCompType == CUDNN_ATTR_MATMUL_COMP_TYPE &&
              ssn::cudnn::kOpMatmulA == CUDNN_ATTR_OPERATION_MATMUL_ADESC && ssn::cudnn::kOpMatmulB == CUDNN_ATTR_OPERATION_MATMUL_BDESC &&
              ssn::cudnn::kOpMatmulC == CUDNN_ATTR_OPERATION_MATMUL_CDESC && ssn::cudnn::kOpMatmulDesc == CUDNN_ATTR_OPERATION_MATMUL_DESC &&
              ssn::cudnn::kReductionOperator == CUDNN_ATTR_REDUCTION_OPERATOR && ssn::cudnn::kReductionCompType == CUDNN_ATTR_REDUCTION_COMP_TYPE &&
              ssn::cudnn::kOpReductionX == CUDNN_ATTR_OPERATION_REDUCTION_XDESC && ssn::cudnn::kOpReductionY == CUDNN_ATTR_OPERATION_REDUCTION_YDESC &&
              ssn::cudnn::kOpReductionDesc == CUDNN_ATTR_OPERATION_REDUCTION_DESC);
static_assert(ssn::cudnn::kTypePointwiseMode == CUDNN_TYPE_POINTWISE_MODE && ssn::cudnn::kTypeReductionOperator == CUDNN_TYPE_REDUCTION_OPERATOR_TYPE &&
              ssn::cudnn::kDataFp8E4m3 == CUDNN_DATA_FP8_E4M3);
static_assert(ssn::cudnn::kPwAdd == CUDNN_POINTWISE_ADD && ssn::cudnn::kPwMul == CUDNN_POINTWISE_MUL && ssn::cudnn::kPwDiv == CUDNN_POINTWISE_DIV &&
              ssn::cudnn::kPwSub == CUDNN_POINTWISE_SUB && ssn::cudnn::kPwExp == CUDNN_POINTWISE_EXP && ssn::cudnn::kPwLog == CUDNN_POINTWISE_LOG);
static_assert(ssn::cudnn::kEngine == CUDNN_BACKEND_ENGINE_DESCRIPTOR && ssn::cudnn::kKnobChoice == CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR &&
              ssn::cudnn::kKnobInfo == CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR && ssn::cudnn::kEngineCfgEngine == CUDNN_ATTR_ENGINECFG_ENGINE &&
              ssn::cudnn::kEngineCfgKnobChoices == CUDNN_ATTR_ENGINECFG_KNOB_CHOICES &&
              ssn::cudnn::kKnobChoiceType == CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE && ssn::cudnn::kKnobChoiceValue == CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE &&
              ssn::cudnn::kKnobInfoType == CUDNN_ATTR_KNOB_INFO_TYPE && ssn::cudnn::kKnobInfoMax == CUDNN_ATTR_KNOB_INFO_MAXIMUM_VALUE &&
              ssn::cudnn::kKnobInfoMin == CUDNN_ATTR_KNOB_INFO_MINIMUM_VALUE && ssn::cudnn::kKnobInfoStride == CUDNN_ATTR_KNOB_INFO_STRIDE &&
              ssn::cudnn::kEngineGlobalIndex == CUDNN_ATTR_ENGINE_GLOBAL_INDEX && ssn::cudnn::kEngineKnobInfo == CUDNN_ATTR_ENGINE_KNOB_INFO &&
              ssn::cudnn::kTypeKnobType == CUDNN_TYPE_KNOB_TYPE);
static_assert(ssn::cudnn::kReduceAdd == CUDNN_REDUCE_TENSOR_ADD && ssn::cudnn::kReduceMax == CUDNN_REDUCE_TENSOR_MAX &&
              ssn::cudnn::kReduceAmax == CUDNN_REDUCE_TENSOR_AMAX);
#if CUDNN_MAJOR > 9 || (CUDNN_MAJOR == 9 && CUDNN_MINOR >= 13)
static_assert(ssn::cudnn::kOpSdpaFwd == CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR && ssn::cudnn::kSdpaQ == CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC &&
              ssn::cudnn::kSdpaK == CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC && ssn::cudnn::kSdpaV == CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC &&
              ssn::cudnn::kSdpaO == CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC && ssn::cudnn::kSdpaScale == CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC &&
              ssn::cudnn::kSdpaStats == CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC);
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

enum Uid : int64_t {
  kQ = 1, kK = 2, kV = 3, kO = 4, kScale = 5, kStats = 6,
  // the FP8 graph's scale factors (device scalars) and its two amax outputs
  kDescaleQ = 10, kDescaleK = 11, kDescaleV = 12, kDescaleS = 13, kScaleS = 14, kScaleO = 15, kAmaxS = 16, kAmaxO = 17
};

/** Any tensor of four dimensions: `dtype`, virtual (an intermediate of the graph) or not, a by-value scalar or not. */
std::unique_ptr<Descriptor> tensor4(int64_t uid, int dtype, const int64_t (&dims)[4], const int64_t (&strides)[4],
                                    bool isVirtual = false, bool byValue = false) {
  auto t = std::make_unique<Descriptor>(cudnn::kTensor);
  const int64_t alignment = 16;
  check(t->set(cudnn::kTensorDataType, cudnn::kTypeDataType, 1, &dtype), "tensor data type");
  check(t->set(cudnn::kTensorDimensions, cudnn::kTypeInt64, 4, dims), "tensor dimensions");
  check(t->set(cudnn::kTensorStrides, cudnn::kTypeInt64, 4, strides), "tensor strides");
  check(t->set(cudnn::kTensorUniqueId, cudnn::kTypeInt64, 1, &uid), "tensor id");
  check(t->set(cudnn::kTensorByteAlignment, cudnn::kTypeInt64, 1, &alignment), "tensor alignment");
  if (isVirtual) check(t->set(cudnn::kTensorIsVirtual, cudnn::kTypeBoolean, 1, &isVirtual), "tensor virtual");
  if (byValue) check(t->set(cudnn::kTensorIsByValue, cudnn::kTypeBoolean, 1, &byValue), "tensor by value");
  check(api().finalize(t->d), "tensor finalize");
  return t;
}

/** The operands of a call whose keys are cut into n runs, seen as a batch of n: the queries repeated (batch stride 0),
    run b of the keys and values at rows [b lk/n, (b + 1) lk/n), the n partial outputs [n, lq, heads * headDim] packed,
    and their log-sum-exps [n, heads, lq, 1] in fp32. n = 1: the plain call (no statistics). */
struct SplitLayout {
  int64_t n, h, D, lq, lkRun, qStride, kvStride, oStride;
  int64_t qDims[4], qStrides[4], kvDims[4], kvStrides[4], kTDims[4], kTStrides[4], oDims[4], oStrides[4];
  int64_t statsDims[4], statsStrides[4];
  SplitLayout(int splits, int lqIn, int lk, int heads, int headDim, int qs, int kvs, int os)
      : n(splits), h(heads), D(headDim), lq(lqIn), lkRun(lk / splits), qStride(qs), kvStride(kvs),
        oStride(splits > 1 ? heads * headDim : os),
        qDims{n, h, lq, D}, qStrides{n > 1 ? 0 : lq * qStride, D, qStride, 1},
        kvDims{n, h, lkRun, D}, kvStrides{lkRun * kvStride, D, kvStride, 1},
        kTDims{n, h, D, lkRun}, kTStrides{lkRun * kvStride, D, 1, kvStride},
        oDims{n, h, lq, D}, oStrides{lq * oStride, D, oStride, 1},
        statsDims{n, h, lq, 1}, statsStrides{h * lq, lq, 1, 1} {}
};

/** A float scalar passed by value (the softmax scale). */
std::unique_ptr<Descriptor> scalar(int64_t uid) {
  return tensor4(uid, cudnn::kDataFloat, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true);
}

/** The operations of one graph, built in order, and every descriptor they refer to (kept alive until the plan is). */
struct GraphBuilder {
  std::vector<std::unique_ptr<Descriptor>> keep;
  std::vector<cudnn::Desc> ops;
  int64_t nextVirtual = 100;

  cudnn::Desc hold(std::unique_ptr<Descriptor> d) {
    keep.push_back(std::move(d));
    return keep.back()->d;
  }
  /** An intermediate of the graph, packed row-major (fp32 unless said). */
  cudnn::Desc virtualTensor(const int64_t (&dims)[4], int dtype = cudnn::kDataFloat) {
    const int64_t strides[4] = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
    return hold(tensor4(nextVirtual++, dtype, dims, strides, true));
  }
  /** A finalised pointwise, reduction or matmul configuration in fp32 math, with its mode when it has one
      (modeAttr < 0: none); nullptr when cuDNN refuses it. */
  cudnn::Desc config(int type, int precisionAttr, int modeAttr = -1, int modeType = 0, int mode = 0) {
    auto c = std::make_unique<Descriptor>(type);
    const int prec = cudnn::kDataFloat;
    if (modeAttr >= 0) check(c->set(modeAttr, modeType, 1, &mode), "operation mode");
    check(c->set(precisionAttr, cudnn::kTypeDataType, 1, &prec), "operation precision");
    if (api().finalize(c->d) != 0) return nullptr;
    return hold(std::move(c));
  }
  /** Appends one operation of `type` with its descriptor-valued attributes (null values left unset); false when
      cuDNN refuses it. */
  bool op(int type, std::initializer_list<std::pair<int, cudnn::Desc>> attributes) {
    auto o = std::make_unique<Descriptor>(type);
    for (const auto& [name, value] : attributes) {
      if (!value) continue;
      check(o->set(name, cudnn::kTypeBackendDescriptor, 1, &value), "operation attribute");
    }
    if (api().finalize(o->d) != 0) return false;
    ops.push_back(hold(std::move(o)));
    return true;
  }
  /** y = x op b (b nullptr: a unary op). */
  bool pointwise(int mode, cudnn::Desc x, cudnn::Desc b, cudnn::Desc y) {
    const cudnn::Desc c = config(cudnn::kPointwise, cudnn::kPointwiseMathPrec, cudnn::kPointwiseMode, cudnn::kTypePointwiseMode, mode);
    return c && op(cudnn::kOpPointwise, {{cudnn::kOpPointwiseDesc, c}, {cudnn::kOpPointwiseX, x}, {cudnn::kOpPointwiseB, b},
                                         {cudnn::kOpPointwiseY, y}});
  }
  bool reduction(int operation, cudnn::Desc x, cudnn::Desc y) {
    const cudnn::Desc c =
        config(cudnn::kReduction, cudnn::kReductionCompType, cudnn::kReductionOperator, cudnn::kTypeReductionOperator, operation);
    return c && op(cudnn::kOpReduction, {{cudnn::kOpReductionDesc, c}, {cudnn::kOpReductionX, x}, {cudnn::kOpReductionY, y}});
  }
  bool matmul(cudnn::Desc a, cudnn::Desc b, cudnn::Desc c) {
    const cudnn::Desc m = config(cudnn::kMatmul, cudnn::kMatmulCompType);
    return m && op(cudnn::kOpMatmul, {{cudnn::kOpMatmulA, a}, {cudnn::kOpMatmulB, b}, {cudnn::kOpMatmulC, c}, {cudnn::kOpMatmulDesc, m}});
  }
};

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
  std::string keys;
  try {
    const int n = forcedKeySplits();
    keys = n == 0 ? "keys split in 2 below 4 waves" : n == 1 ? "keys whole (SSN_ATTENTION_SPLIT=1)"
                                                             : "keys split in " + std::to_string(n) + " (SSN_ATTENTION_SPLIT)";
  } catch (const NativeError&) {
    keys = "SSN_ATTENTION_SPLIT is not valid";
  }
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100) +
         " (" + a.library + "), " + keys;
}

struct SdpaPlan {
  void* plan = nullptr;  // execution plan descriptor, or nullptr: cuDNN has no engine for this shape
  int64_t workspace = 0;
  /** SSN_SDPA_PROBE only: every configuration cuDNN finalised for the graph ([0] is `plan`), timed on the shape's
      first run outside a graph capture, then cleared. */
  struct Candidate {
    void* plan;
    int64_t workspace;
    std::string label;
  };
  std::vector<Candidate> candidates;
  std::string shape;
};

struct SdpaDevicePlans {
  using Plan = SdpaPlan;
  using Key = std::tuple<int, int, int, int, int, int, int, int, int>;  // kind, key runs, then the shape
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

/** SSN_SDPA_PROBE (measurements): unset or "0": off; "time": the configurations cuDNN finalises for a graph (the
    heuristics' list, and each knob of each listed engine moved through its range one at a time; at most
    SSN_SDPA_PROBE_MAX, default 16) are timed on the shape's first run and the times written to stderr, the
    heuristics' first still used; "pick": the same, and the fastest is used from then on. */
enum class Probe { Off, Time, Pick };
Probe probeMode() {
  const char* env = std::getenv("SSN_SDPA_PROBE");
  if (!env || !*env || !std::strcmp(env, "0")) return Probe::Off;
  if (!std::strcmp(env, "time")) return Probe::Time;
  if (!std::strcmp(env, "pick")) return Probe::Pick;
  throw NativeError(std::string("SSN_SDPA_PROBE must be 0, time or pick, got '") + env + "'");
}

/** A finalised execution plan for one engine configuration, or nullptr. */
void* finalizePlan(cudnn::Desc config, int64_t* workspace) {
  Descriptor plan(cudnn::kExecutionPlan);
  check(plan.set(cudnn::kPlanEngineConfig, cudnn::kTypeBackendDescriptor, 1, &config), "plan config");
  if (api().finalize(plan.d) != 0) return nullptr;
  int64_t n = 0;
  check(api().getAttribute(plan.d, cudnn::kPlanWorkspaceSize, cudnn::kTypeInt64, 1, &n, workspace), "plan workspace");
  return plan.release();
}

/** The probe's candidates from one heuristics configuration: itself, then each knob of its engine moved through its
    range (up to 64 values) with the other knobs as the heuristics chose them. */
void knobVariants(cudnn::Desc config, int index, size_t limit, std::vector<SdpaPlan::Candidate>& out) {
  const Api& a = api();
  constexpr int kMaxKnobs = 64;
  int64_t n = 0;
  Descriptor engine(cudnn::kEngine);
  if (a.getAttribute(config, cudnn::kEngineCfgEngine, cudnn::kTypeBackendDescriptor, 1, &n, &engine.d) != 0) return;
  int64_t globalIndex = -1;
  a.getAttribute(engine.d, cudnn::kEngineGlobalIndex, cudnn::kTypeInt64, 1, &n, &globalIndex);
  // the heuristics' knob choices
  std::vector<std::unique_ptr<Descriptor>> choiceDescs;
  cudnn::Desc raw[kMaxKnobs];
  for (int i = 0; i < kMaxKnobs; i++) {
    choiceDescs.push_back(std::make_unique<Descriptor>(cudnn::kKnobChoice));
    raw[i] = choiceDescs.back()->d;
  }
  int64_t nChoices = 0;
  if (a.getAttribute(config, cudnn::kEngineCfgKnobChoices, cudnn::kTypeBackendDescriptor, kMaxKnobs, &nChoices, raw) != 0) nChoices = 0;
  std::vector<std::pair<int, int64_t>> chosen;
  for (int64_t i = 0; i < nChoices && i < kMaxKnobs; i++) {
    int type = 0;
    int64_t value = 0;
    a.getAttribute(raw[i], cudnn::kKnobChoiceType, cudnn::kTypeKnobType, 1, &n, &type);
    a.getAttribute(raw[i], cudnn::kKnobChoiceValue, cudnn::kTypeInt64, 1, &n, &value);
    chosen.emplace_back(type, value);
  }
  const auto labelOf = [&](const std::vector<std::pair<int, int64_t>>& knobs) {
    std::string l = "heuristics #" + std::to_string(index) + " engine " + std::to_string(globalIndex) + " knobs";
    for (const auto& [t, v] : knobs) l += " " + std::to_string(t) + "=" + std::to_string(v);
    return l;
  };
  int64_t ws = 0;
  if (void* p = finalizePlan(config, &ws)) out.push_back({p, ws, labelOf(chosen) + (out.empty() ? " (the heuristics' first)" : "")});
  // the engine's knobs and their ranges
  std::vector<std::unique_ptr<Descriptor>> infoDescs;
  for (int i = 0; i < kMaxKnobs; i++) {
    infoDescs.push_back(std::make_unique<Descriptor>(cudnn::kKnobInfo));
    raw[i] = infoDescs.back()->d;
  }
  int64_t nInfos = 0;
  if (a.getAttribute(engine.d, cudnn::kEngineKnobInfo, cudnn::kTypeBackendDescriptor, kMaxKnobs, &nInfos, raw) != 0) return;
  for (int64_t i = 0; i < nInfos && i < kMaxKnobs; i++) {
    int type = 0;
    int64_t lo = 0, hi = 0, stride = 1;
    a.getAttribute(raw[i], cudnn::kKnobInfoType, cudnn::kTypeKnobType, 1, &n, &type);
    a.getAttribute(raw[i], cudnn::kKnobInfoMin, cudnn::kTypeInt64, 1, &n, &lo);
    a.getAttribute(raw[i], cudnn::kKnobInfoMax, cudnn::kTypeInt64, 1, &n, &hi);
    a.getAttribute(raw[i], cudnn::kKnobInfoStride, cudnn::kTypeInt64, 1, &n, &stride);
    if (stride < 1) stride = 1;
    std::fprintf(stderr, "sdpa-probe engine %lld knob %d: %lld to %lld step %lld\n", (long long)globalIndex, type, (long long)lo,
                 (long long)hi, (long long)stride);
    int tried = 0;
    for (int64_t v = lo; v <= hi && tried < 64 && out.size() < limit; v += stride, tried++) {
      std::vector<std::pair<int, int64_t>> knobs = chosen;
      const auto knob = std::find_if(knobs.begin(), knobs.end(), [&](const auto& k) { return k.first == type; });
      if (knob == knobs.end()) knobs.emplace_back(type, v);
      else if (knob->second == v) continue;  // the heuristics' own choice: already a candidate
      else knob->second = v;
      std::vector<std::unique_ptr<Descriptor>> setDescs;
      std::vector<cudnn::Desc> set;
      bool ok = true;
      for (const auto& [t, value] : knobs) {
        setDescs.push_back(std::make_unique<Descriptor>(cudnn::kKnobChoice));
        Descriptor& c = *setDescs.back();
        ok = ok && c.set(cudnn::kKnobChoiceType, cudnn::kTypeKnobType, 1, &t) == 0 &&
             c.set(cudnn::kKnobChoiceValue, cudnn::kTypeInt64, 1, &value) == 0 && a.finalize(c.d) == 0;
        set.push_back(c.d);
      }
      Descriptor variant(cudnn::kEngineCfg);
      ok = ok && variant.set(cudnn::kEngineCfgEngine, cudnn::kTypeBackendDescriptor, 1, &engine.d) == 0 &&
           variant.set(cudnn::kEngineCfgKnobChoices, cudnn::kTypeBackendDescriptor, (int64_t)set.size(), set.data()) == 0 &&
           a.finalize(variant.d) == 0;
      if (!ok) continue;
      if (void* p = finalizePlan(variant.d, &ws)) out.push_back({p, ws, labelOf(knobs)});
    }
  }
}

/** One plan for the graph of `ops`, or {} where cuDNN has none (heuristics' configurations tried in order). */
SdpaDevicePlans::Plan planForOps(void* handle, std::vector<cudnn::Desc> ops) {
  const Api& a = api();
  Descriptor graph(cudnn::kOpGraph);
  check(graph.set(cudnn::kOpGraphOps, cudnn::kTypeBackendDescriptor, (int64_t)ops.size(), ops.data()), "graph ops");
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
  if (probeMode() != Probe::Off) {
    SdpaDevicePlans::Plan p;
    const char* env = std::getenv("SSN_SDPA_PROBE_MAX");  // candidates a graph at most (plans take time to finalise)
    const size_t limit = env && std::atoi(env) > 0 ? static_cast<size_t>(std::atoi(env)) : 16;
    for (int64_t i = 0; i < found && i < kMaxConfigs && p.candidates.size() < limit; i++)
      knobVariants(raw[i], static_cast<int>(i), limit, p.candidates);
    if (p.candidates.empty()) return {};
    p.plan = p.candidates[0].plan;
    p.workspace = p.candidates[0].workspace;
    return p;
  }
  for (int64_t i = 0; i < found && i < kMaxConfigs; i++) {
    SdpaDevicePlans::Plan p;
    p.plan = finalizePlan(raw[i], &p.workspace);
    if (p.plan) return p;  // else the next configuration, in the heuristics' order
  }
  return {};
}

/** bf16: the backend's single SDPA operation (with its log-sum-exp statistics when the keys are split). */
SdpaDevicePlans::Plan buildPlan(void* handle, const SplitLayout& t) {
  const int bf = cudnn::kDataBfloat16;
  auto q = tensor4(kQ, bf, t.qDims, t.qStrides);
  auto k = tensor4(kK, bf, t.kvDims, t.kvStrides);
  auto v = tensor4(kV, bf, t.kvDims, t.kvStrides);
  auto o = tensor4(kO, bf, t.oDims, t.oStrides);
  auto scale = scalar(kScale);
  std::unique_ptr<Descriptor> stats;
  if (t.n > 1) stats = tensor4(kStats, cudnn::kDataFloat, t.statsDims, t.statsStrides);

  Descriptor op(cudnn::kOpSdpaFwd);
  check(op.set(cudnn::kSdpaQ, cudnn::kTypeBackendDescriptor, 1, &q->d), "SDPA q");
  check(op.set(cudnn::kSdpaK, cudnn::kTypeBackendDescriptor, 1, &k->d), "SDPA k");
  check(op.set(cudnn::kSdpaV, cudnn::kTypeBackendDescriptor, 1, &v->d), "SDPA v");
  check(op.set(cudnn::kSdpaO, cudnn::kTypeBackendDescriptor, 1, &o->d), "SDPA o");
  check(op.set(cudnn::kSdpaScale, cudnn::kTypeBackendDescriptor, 1, &scale->d), "SDPA scale");
  if (stats) check(op.set(cudnn::kSdpaStats, cudnn::kTypeBackendDescriptor, 1, &stats->d), "SDPA stats");
  if (api().finalize(op.d) != 0) return {};  // this cuDNN does not take the shape (e.g. head size)
  return planForOps(handle, {op.d});
}

/**
 * FP8 (E4M3): the SDPA operation has no scale factors, so the graph is spelled out as the operations cuDNN's fused
 * FP8 attention engine recognises (the pattern of its frontend's FP8 forward): S = Q Kᵀ · scale · dq · dk; softmax
 * as max, subtract, exp, sum, (log-sum-exp statistics), divide; amax(P); P8 = P · sP in E4M3; O = P8 V · dS · dV,
 * written as O · sO in E4M3, and amax of O before sO.
 */
SdpaDevicePlans::Plan buildFp8Plan(void* handle, const SplitLayout& t) {
  const int f8 = cudnn::kDataFp8E4m3, f32 = cudnn::kDataFloat;
  const int64_t n = t.n, h = t.h, D = t.D, Lq = t.lq, Lk = t.lkRun;
  GraphBuilder g;
  const cudnn::Desc q = g.hold(tensor4(kQ, f8, t.qDims, t.qStrides));
  const cudnn::Desc kT = g.hold(tensor4(kK, f8, t.kTDims, t.kTStrides));  // K transposed for Q·Kᵀ, over the same rows
  const cudnn::Desc v = g.hold(tensor4(kV, f8, t.kvDims, t.kvStrides));
  const cudnn::Desc o = g.hold(tensor4(kO, f8, t.oDims, t.oStrides));
  const auto scalarOf = [&](int64_t uid, bool byValue) { return g.hold(tensor4(uid, f32, {1, 1, 1, 1}, {1, 1, 1, 1}, false, byValue)); };
  const cudnn::Desc scale = scalarOf(kScale, true);
  const cudnn::Desc dq = scalarOf(kDescaleQ, false), dk = scalarOf(kDescaleK, false), dv = scalarOf(kDescaleV, false);
  const cudnn::Desc dS = scalarOf(kDescaleS, false), sS = scalarOf(kScaleS, false), sO = scalarOf(kScaleO, false);
  const cudnn::Desc amaxS = scalarOf(kAmaxS, false), amaxO = scalarOf(kAmaxO, false);
  const int64_t scores[4] = {n, h, Lq, Lk}, rowStats[4] = {n, h, Lq, 1}, out[4] = {n, h, Lq, D};

  const cudnn::Desc s1 = g.virtualTensor(scores), s2 = g.virtualTensor(scores), s3 = g.virtualTensor(scores),
                    s4 = g.virtualTensor(scores);
  const cudnn::Desc mx = g.virtualTensor(rowStats), sub = g.virtualTensor(scores), ex = g.virtualTensor(scores);
  const cudnn::Desc sum = g.virtualTensor(rowStats), lg = g.virtualTensor(rowStats);
  const cudnn::Desc stats = n > 1 ? g.hold(tensor4(kStats, f32, t.statsDims, t.statsStrides)) : g.virtualTensor(rowStats);
  const cudnn::Desc p = g.virtualTensor(scores), p8 = g.virtualTensor(scores, f8);
  const cudnn::Desc o1 = g.virtualTensor(out), o2 = g.virtualTensor(out), o3 = g.virtualTensor(out);
  const bool built = g.matmul(q, kT, s1) && g.pointwise(cudnn::kPwMul, s1, scale, s2) &&
                     g.pointwise(cudnn::kPwMul, s2, dq, s3) && g.pointwise(cudnn::kPwMul, s3, dk, s4) &&
                     g.reduction(cudnn::kReduceMax, s4, mx) && g.pointwise(cudnn::kPwSub, s4, mx, sub) &&
                     g.pointwise(cudnn::kPwExp, sub, nullptr, ex) && g.reduction(cudnn::kReduceAdd, ex, sum) &&
                     g.pointwise(cudnn::kPwLog, sum, nullptr, lg) && g.pointwise(cudnn::kPwAdd, mx, lg, stats) &&
                     g.pointwise(cudnn::kPwDiv, ex, sum, p) && g.reduction(cudnn::kReduceAmax, p, amaxS) &&
                     g.pointwise(cudnn::kPwMul, p, sS, p8) && g.matmul(p8, v, o1) &&
                     g.pointwise(cudnn::kPwMul, o1, dS, o2) && g.pointwise(cudnn::kPwMul, o2, dv, o3) &&
                     g.pointwise(cudnn::kPwMul, o3, sO, o) && g.reduction(cudnn::kReduceAmax, o3, amaxO);
  if (!built) return {};
  return planForOps(handle, g.ops);
}

}  // namespace

std::unique_ptr<CudnnSdpa> CudnnSdpa::create(int device) {
  const Mode m = mode();
  if (m == Mode::Kernel) return nullptr;
  forcedKeySplits();  // a bad SSN_ATTENTION_SPLIT fails here, at engine start, not in the first forward
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
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return std::unique_ptr<CudnnSdpa>(new CudnnSdpa(plans, sms));
}

CudnnSdpa::~CudnnSdpa() = default;  // the plans and the handle are the device's

SdpaPlan* CudnnSdpa::planFor(int kind, int splits, int lq, int lk, int heads, int headDim, int qStride, int kvStride,
                                   int oStride) {
  const SdpaDevicePlans::Key key{kind, splits, lq, lk, heads, headDim, qStride, kvStride, oStride};
  const bool firstHere = seen_.insert(key).second;
  auto it = device_->plans.find(key);
  if (it == device_->plans.end()) {
    const auto t0 = std::chrono::steady_clock::now();
    const SplitLayout layout(splits, lq, lk, heads, headDim, qStride, kvStride, oStride);
    SdpaDevicePlans::Plan p = kind == kPlanFp8 ? buildFp8Plan(device_->handle, layout) : buildPlan(device_->handle, layout);
    planMs_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (p.plan) plansBuilt_++;
    p.shape = std::string(kind == kPlanFp8 ? "fp8" : "bf16") + " lq " + std::to_string(lq) + " lk " + std::to_string(lk) +
              " heads " + std::to_string(heads) + " x " + std::to_string(headDim) + ", keys in " + std::to_string(splits);
    it = device_->plans.emplace(key, p).first;
  } else if (firstHere && it->second.plan) {
    plansReused_++;
  }
  return it->second.plan ? &it->second : nullptr;
}

int CudnnSdpa::splitsFor(int lq, int lk, int heads, int headDim) const {
  return keySplits(lq, lk, heads, headDim, sms_, forcedKeySplits());
}

void CudnnSdpa::execute(SdpaPlan& p, int n, const int64_t* uids, void* const* ptrs, cudaStream_t stream) {
  if (!p.candidates.empty()) probe(p, n, uids, ptrs, stream);
  launch(p.plan, p.workspace, n, uids, ptrs, stream);
}

void CudnnSdpa::launch(void* plan, int64_t workspace, int n, const int64_t* uids, void* const* ptrs, cudaStream_t stream) {
  // Grows only on a shape's first run here (never while a CUDA graph is being captured: a shape is captured after
  // it ran once directly).
  if (workspace > 0) workspace_.reserve(static_cast<size_t>(workspace));
  const Api& a = api();
  check(a.setStream(device_->handle, stream), "set stream");
  Descriptor pack(cudnn::kVariantPack);
  void* ws = workspace_.ptr;
  check(pack.set(cudnn::kPackUniqueIds, cudnn::kTypeInt64, n, uids), "variant pack ids");
  check(pack.set(cudnn::kPackDataPointers, cudnn::kTypeVoidPtr, n, ptrs), "variant pack pointers");
  check(pack.set(cudnn::kPackWorkspace, cudnn::kTypeVoidPtr, 1, &ws), "variant pack workspace");
  check(a.finalize(pack.d), "variant pack finalize");
  check(a.execute(device_->handle, plan, pack.d), "SDPA execute");
}

void CudnnSdpa::probe(SdpaPlan& p, int n, const int64_t* uids, void* const* ptrs, cudaStream_t stream) {
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return;  // a later direct run of the shape times it
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  constexpr int kRuns = 5;
  std::vector<float> ms(p.candidates.size(), 1e30f);  // refused ones keep this
  for (size_t i = 0; i < p.candidates.size(); i++) {
    const SdpaPlan::Candidate& c = p.candidates[i];
    try {
      launch(c.plan, c.workspace, n, uids, ptrs, stream);  // warm
    } catch (const NativeError& e) {  // finalised, yet refused at execution: never chosen
      std::fprintf(stderr, "sdpa-probe %s: refused %s (%s)\n", p.shape.c_str(), c.label.c_str(), e.what());
      continue;
    }
    CUDA_CHECK(cudaEventRecord(start, stream));
    for (int r = 0; r < kRuns; r++) launch(c.plan, c.workspace, n, uids, ptrs, stream);
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
    ms[i] /= kRuns;
  }
  size_t best = 0;
  for (size_t i = 1; i < ms.size(); i++)
    if (ms[i] < ms[best]) best = i;
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  for (size_t i = 0; i < p.candidates.size(); i++)
    std::fprintf(stderr, "sdpa-probe %s: %8.4f ms %s%s\n", p.shape.c_str(), ms[i], p.candidates[i].label.c_str(),
                 i == best ? "  <- fastest" : "");
  const size_t use = probeMode() == Probe::Pick && ms[best] < 1e30f ? best : 0;
  for (size_t i = 0; i < p.candidates.size(); i++)
    if (i != use) api().destroyDescriptor(p.candidates[i].plan);
  p.plan = p.candidates[use].plan;
  p.workspace = p.candidates[use].workspace;
  p.candidates.clear();
}

namespace {
bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
}  // namespace

bool CudnnSdpa::run(const bf16* q, const bf16* k, const bf16* v, bf16* o, int lq, int lk, int heads, int headDim,
                    int qStride, int kvStride, int oStride, float scale, cudaStream_t stream) {
  if (lq == 0 || lk == 0) return false;
  // 16-byte alignment of every row start, as the tensors declare
  if (qStride % 8 || kvStride % 8 || oStride % 8 || !aligned16(q) || !aligned16(k) || !aligned16(v) || !aligned16(o)) return false;
  const int64_t uids[6] = {kQ, kK, kV, kO, kScale, kStats};
  const int splits = splitsFor(lq, lk, heads, headDim);
  if (splits > 1) {
    split_.reserve(splits, lq, heads, headDim);
    std::unique_lock<std::mutex> lock(device_->mutex);
    if (SdpaPlan* p = planFor(kPlanBf16, splits, lq, lk, heads, headDim, qStride, kvStride, oStride)) {
      void* ptrs[6] = {const_cast<bf16*>(q), const_cast<bf16*>(k), const_cast<bf16*>(v), split_.parts.ptr, &scale, split_.lse.ptr};
      execute(*p, 6, uids, ptrs, stream);
      lock.unlock();
      split_.merge(splits, lq, heads, headDim, o, oStride, stream);
      return true;
    }
  }
  std::lock_guard<std::mutex> lock(device_->mutex);  // whole, also where cuDNN has no plan for the split call
  SdpaPlan* p = planFor(kPlanBf16, 1, lq, lk, heads, headDim, qStride, kvStride, oStride);
  if (!p) return false;
  void* ptrs[5] = {const_cast<bf16*>(q), const_cast<bf16*>(k), const_cast<bf16*>(v), o, &scale};
  execute(*p, 5, uids, ptrs, stream);
  return true;
}

bool CudnnSdpa::runFp8(const Fp8Operands& t, int splits, int lq, int lk, int heads, int headDim, int qStride, int kvStride,
                       int oStride, float scale, cudaStream_t stream) {
  if (lq == 0 || lk == 0 || splits < 1 || lk % splits) return false;
  if (qStride % 16 || kvStride % 16 || oStride % 16 || !aligned16(t.q) || !aligned16(t.k) || !aligned16(t.v) || !aligned16(t.o))
    return false;
  if (splits > 1 && !aligned16(t.stats)) return false;
  for (const void* s : {(const void*)t.descaleQ, (const void*)t.descaleK, (const void*)t.descaleV, (const void*)t.descaleS,
                        (const void*)t.scaleS, (const void*)t.scaleO, (const void*)t.amaxS, (const void*)t.amaxO})
    if (!aligned16(s)) return false;
  std::lock_guard<std::mutex> lock(device_->mutex);
  SdpaPlan* p = planFor(kPlanFp8, splits, lq, lk, heads, headDim, qStride, kvStride, oStride);
  if (!p) return false;
  const int64_t uids[14] = {kQ, kK, kV, kO, kScale, kDescaleQ, kDescaleK, kDescaleV, kDescaleS, kScaleS, kScaleO, kAmaxS, kAmaxO,
                            kStats};
  void* ptrs[14] = {const_cast<void*>(t.q), const_cast<void*>(t.k), const_cast<void*>(t.v), t.o, &scale,
                    const_cast<float*>(t.descaleQ), const_cast<float*>(t.descaleK), const_cast<float*>(t.descaleV),
                    const_cast<float*>(t.descaleS), const_cast<float*>(t.scaleS), const_cast<float*>(t.scaleO), t.amaxS, t.amaxO,
                    t.stats};
  execute(*p, splits > 1 ? 14 : 13, uids, ptrs, stream);
  return true;
}

void CudnnSdpa::addresses(std::vector<uintptr_t>& out) const {
  out.push_back(reinterpret_cast<uintptr_t>(workspace_.ptr));
  split_.addresses(out);
}

}  // namespace ssn
