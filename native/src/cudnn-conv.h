// cuDNN's convolution forward (the legacy API: cudnnFindConvolutionForwardAlgorithmEx, cudnnConvolutionForward,
// cudnnConvolutionBiasActivationForward) for the TAEHV and Wan VAE decoders, on NHWC tensors. cuDNN is loaded at run time
// (dlopen, as for the fused attention), so the library builds and runs without it; the decoder needs it.
#pragma once
#include "common.h"
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace ssn {

/** Storage type of a convolution's tensors; products accumulate in fp32 in every case. */
enum class ConvType { Bf16 = 0, Fp32 = 1, Fp16 = 2 };

/** One stride-1 convolution over n frames of [h, w, cin] NHWC, kernel k x k with padding k / 2, to [h, w, cout]. */
struct ConvGeometry {
  int n, h, w, cin, cout, k;
  bool operator<(const ConvGeometry& o) const {
    return std::tie(n, h, w, cin, cout, k) < std::tie(o.n, o.h, o.w, o.cin, o.cout, o.k);
  }
};

class CudnnConv {
 public:
  /** Throws (naming the reason) when cuDNN cannot be loaded or lacks the convolution API. */
  static std::unique_ptr<CudnnConv> create(int device, ConvType type);
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  /** "cuDNN 9.19.0 (libcudnn.so.9)", or why it is not loaded. */
  static std::string describe();

  /** The descriptors of one geometry and the algorithm found for it (cached per geometry). */
  struct Shape {
    ConvGeometry g{};
    void* x = nullptr;       // tensor descriptors: input, output
    void* y = nullptr;
    void* w = nullptr;       // filter [cout, k, k, cin]
    void* conv = nullptr;
    void* bias = nullptr;    // [1, cout, 1, 1] in the storage type
    void* bias32 = nullptr;  // [1, cout, 1, 1] fp32
    int algo = -1;           // -1: not searched yet
    size_t workspace = 0;
    float findMs = 0;        // the chosen algorithm's time as cudnnFind measured it
  };
  Shape* shape(const ConvGeometry& g);
  /** Times every algorithm on these buffers (y is written) and keeps the fastest that fits the workspace limit. */
  void find(Shape* s, const void* x, const void* w, void* y, cudaStream_t stream);

  /** y = conv(x, w). Returns cuDNN's status (0 = success). */
  int forward(Shape* s, const void* x, const void* w, void* y, cudaStream_t stream);
  /** y = ReLU(conv(x, w) + z + bias) in one call (z == nullptr: no z term); bias in the storage type, or fp32
      when bias32. Returns cuDNN's status: some versions refuse some type configurations (the caller then
      runs forward() and its own epilogue). */
  int forwardBiasRelu(Shape* s, const void* x, const void* w, const void* z, const void* bias, bool bias32, void* y,
                      cudaStream_t stream);
  std::string errorString(int status) const;
  int shapes() const { return static_cast<int>(shapes_.size()); }

 private:
  CudnnConv(void* handle, ConvType type) : handle_(handle), type_(type) {}
  void* handle_;
  ConvType type_;
  void* relu_ = nullptr;  // activation descriptor
  std::map<ConvGeometry, std::unique_ptr<Shape>> shapes_;
  DeviceBuffer workspace_;
};

}  // namespace ssn
