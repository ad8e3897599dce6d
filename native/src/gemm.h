// Matrix products through cuBLASLt: out[M, N] = X[M, K] . W[N, K]^T (row-major, PyTorch Linear layout),
// bf16 operands with fp32 accumulation (or fp32 operands, plain fp32 arithmetic), bf16 or fp32 output; or E4M3
// operands scaled per row (one factor per row of X, one per row of W: cuBLASLt's outer-vector scaling, Hopper on).
// One heuristic query per shape, then cached.
#pragma once
#include "common.h"
#include <map>
#include <tuple>

namespace ssn {

enum class DType { Bf16, F32, E4m3Rows };
template <typename T> constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<bf16>() { return DType::Bf16; }
template <> constexpr DType dtypeOf<float>() { return DType::F32; }

class Gemm {
 public:
  explicit Gemm(size_t workspaceBytes = 64u << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  /** out = X W^T (beta = 0). M, N, K > 0; K and N multiples of 8. */
  void run(cudaStream_t s, int M, int N, int K, const void* X, const void* W, DType in, void* out, DType outType);
  template <typename T>
  void run(cudaStream_t s, int M, int N, int K, const T* X, const T* W, void* out, DType outType) {
    run(s, M, N, K, X, W, dtypeOf<T>(), out, outType);
  }
  /** bf16 out = GELU(X W^T + bias) in the product's epilogue (bias bf16 [N]), saving a pass over out.
      Returns false, having done nothing, where cuBLASLt has no such algorithm (or SSN_GEMM_EPILOGUE=0). */
  bool runBiasGelu(cudaStream_t s, int M, int N, int K, const bf16* X, const bf16* W, const bf16* bias, bf16* out);
  /** out = (xScale ⊙rows X8) (wScale ⊙rows W8)^T: X8 [M, K] and W8 [N, K] E4M3, xScale [M] and wScale [N] their rows'
      factors (fp32, on the device), out bf16 or fp32. K a multiple of 16. */
  void runFp8(cudaStream_t s, int M, int N, int K, const uint8_t* X8, const float* xScale, const uint8_t* W8,
              const float* wScale, void* out, DType outType);
  /** bf16 out = GELU(runFp8's product + bias); false, having done nothing, where cuBLASLt has no such algorithm. */
  bool runFp8BiasGelu(cudaStream_t s, int M, int N, int K, const uint8_t* X8, const float* xScale, const uint8_t* W8,
                      const float* wScale, const bf16* bias, bf16* out);

 private:
  struct Plan;
  enum class Epilogue { None, BiasGelu };
  /** nullptr where cuBLASLt finds no algorithm for an epilogue (plain products throw instead). */
  Plan* plan(int M, int N, int K, DType in, DType out, Epilogue epilogue = Epilogue::None);
  /** out = X W^T with the plan's epilogue (beta = 0). */
  void matmul(const Plan& p, cudaStream_t s, const void* X, const void* W, void* out);
  /** The row factors of an E4M3 product (set on the plan's descriptor before each launch, as the bias pointer). */
  void setScales(const Plan& p, const float* xScale, const float* wScale);
  void* handle_ = nullptr;
  DeviceBuffer workspace_;
  size_t workspaceBytes_;
  std::map<std::tuple<int, int, int, int, int, int>, Plan*> plans_;
};

}  // namespace ssn
