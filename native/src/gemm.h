// Matrix products through cuBLASLt: out[M, N] = X[M, K] . W[N, K]^T (row-major, PyTorch Linear layout),
// bf16 operands with fp32 accumulation (or fp32 operands, plain fp32 arithmetic), bf16 or fp32 output.
// One heuristic query per shape, then cached.
#pragma once
#include "common.h"
#include <map>
#include <tuple>

namespace ssn {

enum class DType { Bf16, F32 };
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

 private:
  struct Plan;
  enum class Epilogue { None, BiasGelu };
  /** nullptr where cuBLASLt finds no algorithm for an epilogue (plain products throw instead). */
  Plan* plan(int M, int N, int K, DType in, DType out, Epilogue epilogue = Epilogue::None);
  /** out = X W^T with the plan's epilogue (beta = 0). */
  void matmul(const Plan& p, cudaStream_t s, const void* X, const void* W, void* out);
  void* handle_ = nullptr;
  DeviceBuffer workspace_;
  size_t workspaceBytes_;
  std::map<std::tuple<int, int, int, int, int, int>, Plan*> plans_;
};

}  // namespace ssn
