#include "cudnn-conv.h"
#include "cudnn-library.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <type_traits>
#include <vector>

// The legacy convolution API's names, with cuDNN 9's values: cuDNN is loaded at run time, so its headers are not
// needed to build. Where they are present, the values are checked against them below.
namespace ssn {
namespace cudnnc {
using Status = int;
enum : int { kDataFloat = 0, kDataHalf = 2, kDataBfloat16 = 9 };
enum : int { kNhwc = 1 };
enum : int { kCrossCorrelation = 1 };
enum : int { kTensorOpMath = 1, kFmaMath = 3 };
enum : int { kActivationRelu = 1 };
enum : int { kNotPropagateNan = 0 };
/** cudnnConvolutionFwdAlgoPerf_t */
struct AlgoPerf {
  int algo;
  Status status;
  float time;
  size_t memory;
  int determinism;
  int mathType;
  int reserved[3];
};
}  // namespace cudnnc
}  // namespace ssn

#if __has_include(<cudnn.h>)
#include <cudnn.h>
static_assert(ssn::cudnnc::kDataFloat == CUDNN_DATA_FLOAT && ssn::cudnnc::kDataHalf == CUDNN_DATA_HALF &&
              ssn::cudnnc::kDataBfloat16 == CUDNN_DATA_BFLOAT16 && ssn::cudnnc::kNhwc == CUDNN_TENSOR_NHWC &&
              ssn::cudnnc::kCrossCorrelation == CUDNN_CROSS_CORRELATION && ssn::cudnnc::kTensorOpMath == CUDNN_TENSOR_OP_MATH &&
              ssn::cudnnc::kFmaMath == CUDNN_FMA_MATH && ssn::cudnnc::kActivationRelu == CUDNN_ACTIVATION_RELU &&
              ssn::cudnnc::kNotPropagateNan == CUDNN_NOT_PROPAGATE_NAN);
static_assert(sizeof(ssn::cudnnc::AlgoPerf) == sizeof(cudnnConvolutionFwdAlgoPerf_t) &&
              offsetof(ssn::cudnnc::AlgoPerf, memory) == offsetof(cudnnConvolutionFwdAlgoPerf_t, memory));
#endif

namespace ssn {
namespace {

using cudnnc::Status;

struct Api {
  size_t (*getVersion)();
  const char* (*getErrorString)(Status);
  void (*getLastErrorString)(char*, size_t);
  Status (*create)(void**);
  Status (*destroy)(void*);
  Status (*setStream)(void*, cudaStream_t);
  Status (*createTensor)(void**);
  Status (*destroyTensor)(void*);
  Status (*setTensor4d)(void*, int format, int dtype, int n, int c, int h, int w);
  Status (*createFilter)(void**);
  Status (*destroyFilter)(void*);
  Status (*setFilter4d)(void*, int dtype, int format, int k, int c, int h, int w);
  Status (*createConv)(void**);
  Status (*destroyConv)(void*);
  Status (*setConv2d)(void*, int padH, int padW, int u, int v, int dilH, int dilW, int mode, int computeType);
  Status (*setConvMath)(void*, int mathType);
  Status (*createActivation)(void**);
  Status (*destroyActivation)(void*);
  Status (*setActivation)(void*, int mode, int nan, double coef);
  Status (*algoMaxCount)(void*, int*);
  Status (*find)(void*, void*, const void*, void*, const void*, void*, void*, void*, int, int*, cudnnc::AlgoPerf*, void*,
                 size_t);
  Status (*forward)(void*, const void*, void*, const void*, void*, const void*, void*, int, void*, size_t, const void*,
                    void*, void*);
  Status (*forwardBiasAct)(void*, const void*, void*, const void*, void*, const void*, void*, int, void*, size_t,
                           const void*, void*, const void*, void*, const void*, void*, void*, void*);
  std::string library;
  std::string error;  // why it is not usable
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
    // cuDNN 9's libcudnn.so forwards the whole API; only if a name is missing there are its parts asked (opening
    // them otherwise could load another installation's copies next to the one already in the process).
    std::vector<void*> libs{lib};
    bool partsOpened = false;
    std::string missing;
    auto sym = [&](auto& fn, const char* name) {
      for (int pass = 0; pass < 2; pass++) {
        for (void* l : libs) {
          if (void* s = dlsym(l, name)) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(s);
            return;
          }
        }
        if (partsOpened) break;
        partsOpened = true;
        for (const char* part : {"libcudnn_cnn.so.9", "libcudnn_ops.so.9", "libcudnn_graph.so.9"})
          if (void* p = dlopen(part, RTLD_NOW | RTLD_LOCAL)) libs.push_back(p);
      }
      missing += (missing.empty() ? "" : ", ") + std::string(name);
    };
    sym(a.getVersion, "cudnnGetVersion");
    sym(a.getErrorString, "cudnnGetErrorString");
    sym(a.getLastErrorString, "cudnnGetLastErrorString");
    sym(a.create, "cudnnCreate");
    sym(a.destroy, "cudnnDestroy");
    sym(a.setStream, "cudnnSetStream");
    sym(a.createTensor, "cudnnCreateTensorDescriptor");
    sym(a.destroyTensor, "cudnnDestroyTensorDescriptor");
    sym(a.setTensor4d, "cudnnSetTensor4dDescriptor");
    sym(a.createFilter, "cudnnCreateFilterDescriptor");
    sym(a.destroyFilter, "cudnnDestroyFilterDescriptor");
    sym(a.setFilter4d, "cudnnSetFilter4dDescriptor");
    sym(a.createConv, "cudnnCreateConvolutionDescriptor");
    sym(a.destroyConv, "cudnnDestroyConvolutionDescriptor");
    sym(a.setConv2d, "cudnnSetConvolution2dDescriptor");
    sym(a.setConvMath, "cudnnSetConvolutionMathType");
    sym(a.createActivation, "cudnnCreateActivationDescriptor");
    sym(a.destroyActivation, "cudnnDestroyActivationDescriptor");
    sym(a.setActivation, "cudnnSetActivationDescriptor");
    sym(a.algoMaxCount, "cudnnGetConvolutionForwardAlgorithmMaxCount");
    sym(a.find, "cudnnFindConvolutionForwardAlgorithmEx");
    sym(a.forward, "cudnnConvolutionForward");
    sym(a.forwardBiasAct, "cudnnConvolutionBiasActivationForward");
    if (!missing.empty()) {
      a.error = a.library + " lacks " + missing;
      a.getVersion = nullptr;
    }
  });
  return a;
}

void check(Status s, const char* what) {
  if (s == 0) return;
  const Api& a = api();
  char buf[512] = {0};
  a.getLastErrorString(buf, sizeof buf);
  throw NativeError(std::string("cuDNN ") + what + " failed: " + a.getErrorString(s) + (buf[0] ? std::string(": ") + buf : ""));
}

int dataType(ConvType t) {
  return t == ConvType::Bf16 ? cudnnc::kDataBfloat16 : t == ConvType::Fp16 ? cudnnc::kDataHalf : cudnnc::kDataFloat;
}

/** Workspace an algorithm may use: large enough for the implicit-GEMM kernels, small enough to skip the FFT ones. */
size_t workspaceLimit() {
  if (const char* env = std::getenv("SSN_CONV_WORKSPACE_MB")) return static_cast<size_t>(std::atol(env)) << 20;
  return size_t(256) << 20;
}

}  // namespace

std::string CudnnConv::describe() {
  const Api& a = api();
  if (!a.getVersion) return a.error;
  const size_t v = a.getVersion();
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100) +
         " (" + a.library + ")";
}

std::unique_ptr<CudnnConv> CudnnConv::create(int device, ConvType type) {
  const Api& a = api();
  if (!a.getVersion) throw NativeError("the decoder's convolutions (TAEHV, Wan VAE) need cuDNN 9: " + a.error);
  CUDA_CHECK(cudaSetDevice(device));
  void* handle = nullptr;
  check(a.create(&handle), "create handle");
  std::unique_ptr<CudnnConv> c(new CudnnConv(handle, type));
  check(a.createActivation(&c->relu_), "create activation");
  check(a.setActivation(c->relu_, cudnnc::kActivationRelu, cudnnc::kNotPropagateNan, 0.0), "set activation");
  return c;
}

CudnnConv::~CudnnConv() {
  const Api& a = api();
  for (auto& kv : shapes_) {
    Shape& s = *kv.second;
    for (void* t : {s.x, s.y, s.bias, s.bias32})
      if (t) a.destroyTensor(t);
    if (s.w) a.destroyFilter(s.w);
    if (s.conv) a.destroyConv(s.conv);
  }
  if (relu_) a.destroyActivation(relu_);
  if (handle_) a.destroy(handle_);
}

CudnnConv::Shape* CudnnConv::shape(const ConvGeometry& g) {
  auto it = shapes_.find(g);
  if (it != shapes_.end()) return it->second.get();
  const Api& a = api();
  auto s = std::make_unique<Shape>();
  s->g = g;
  const int dt = dataType(type_);
  check(a.createTensor(&s->x), "create tensor");
  check(a.setTensor4d(s->x, cudnnc::kNhwc, dt, g.n, g.cin, g.h, g.w), "input descriptor");
  check(a.createTensor(&s->y), "create tensor");
  check(a.setTensor4d(s->y, cudnnc::kNhwc, dt, g.n, g.cout, g.h, g.w), "output descriptor");
  check(a.createTensor(&s->bias), "create tensor");
  check(a.setTensor4d(s->bias, cudnnc::kNhwc, dt, 1, g.cout, 1, 1), "bias descriptor");
  check(a.createTensor(&s->bias32), "create tensor");
  check(a.setTensor4d(s->bias32, cudnnc::kNhwc, cudnnc::kDataFloat, 1, g.cout, 1, 1), "bias descriptor");
  check(a.createFilter(&s->w), "create filter");
  check(a.setFilter4d(s->w, dt, cudnnc::kNhwc, g.cout, g.cin, g.k, g.k), "filter descriptor");
  check(a.createConv(&s->conv), "create convolution");
  check(a.setConv2d(s->conv, g.k / 2, g.k / 2, 1, 1, 1, 1, cudnnc::kCrossCorrelation, cudnnc::kDataFloat),
        "convolution descriptor");
  // fp32: FMA kernels only (no TF32), so float32 mode is exact; bf16 / fp16: tensor cores
  check(a.setConvMath(s->conv, type_ == ConvType::Fp32 ? cudnnc::kFmaMath : cudnnc::kTensorOpMath), "math type");
  Shape* out = s.get();
  shapes_.emplace(g, std::move(s));
  return out;
}

void CudnnConv::find(Shape* s, const void* x, const void* w, void* y, cudaStream_t stream) {
  const Api& a = api();
  check(a.setStream(handle_, stream), "set stream");
  int maxCount = 0;
  check(a.algoMaxCount(handle_, &maxCount), "algorithm count");
  std::vector<cudnnc::AlgoPerf> perf(std::max(maxCount, 1));
  const size_t limit = workspaceLimit();
  workspace_.reserve(limit);
  int returned = 0;
  check(a.find(handle_, s->x, x, s->w, w, s->conv, s->y, y, static_cast<int>(perf.size()), &returned, perf.data(),
               workspace_.ptr, limit),
        "find convolution algorithm");
  for (int i = 0; i < returned; i++) {  // sorted by time
    if (perf[i].status == 0 && perf[i].memory <= limit) {
      s->algo = perf[i].algo;
      s->workspace = perf[i].memory;
      s->findMs = perf[i].time;
      return;
    }
  }
  throw NativeError("cuDNN has no convolution algorithm for n=" + std::to_string(s->g.n) + " " + std::to_string(s->g.h) +
                    "x" + std::to_string(s->g.w) + " " + std::to_string(s->g.cin) + "->" + std::to_string(s->g.cout) +
                    " k" + std::to_string(s->g.k));
}

int CudnnConv::forward(Shape* s, const void* x, const void* w, void* y, cudaStream_t stream) {
  const Api& a = api();
  check(a.setStream(handle_, stream), "set stream");
  const float one = 1.f, zero = 0.f;
  return a.forward(handle_, &one, s->x, x, s->w, w, s->conv, s->algo, workspace_.ptr, s->workspace, &zero, s->y, y);
}

int CudnnConv::forwardBiasRelu(Shape* s, const void* x, const void* w, const void* z, const void* bias, bool bias32,
                               void* y, cudaStream_t stream) {
  const Api& a = api();
  check(a.setStream(handle_, stream), "set stream");
  const float one = 1.f, zero = 0.f;
  return a.forwardBiasAct(handle_, &one, s->x, x, s->w, w, s->conv, s->algo, workspace_.ptr, s->workspace,
                          z ? &one : &zero, s->y, z ? z : y, bias32 ? s->bias32 : s->bias, bias, relu_, s->y, y);
}

std::string CudnnConv::errorString(int status) const {
  const Api& a = api();
  char buf[512] = {0};
  a.getLastErrorString(buf, sizeof buf);
  return std::string(a.getErrorString(status)) + (buf[0] ? std::string(": ") + buf : "");
}

}  // namespace ssn
