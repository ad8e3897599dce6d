#include "gemm.h"
#include <cublasLt.h>
#include <cstdlib>
#include <string>

namespace ssn {

namespace {
void ltCheck(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw NativeError(std::string("cuBLASLt ") + what + " failed with status " + std::to_string(static_cast<int>(st)));
}
}  // namespace

struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
};

Gemm::Gemm(size_t workspaceBytes) : workspaceBytes_(workspaceBytes) {
  cublasLtHandle_t h;
  ltCheck(cublasLtCreate(&h), "create");
  handle_ = h;
  workspace_.reserve(workspaceBytes_);
}

Gemm::~Gemm() {
  for (auto& kv : plans_) delete kv.second;
  if (handle_) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

Gemm::Plan* Gemm::plan(int M, int N, int K, DType in, DType type, Epilogue epilogue) {
  const auto key = std::make_tuple(M, N, K, static_cast<int>(in), static_cast<int>(type), static_cast<int>(epilogue));
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  auto* p = new Plan();
  try {
    // Column-major view: D[N, M] = op(A)[N, K] . B[K, M] with A = W (stored [K, N], transposed), B = X.
    ltCheck(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
    const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)), "transa");
    ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)), "transb");
    if (epilogue == Epilogue::BiasGelu) {
      // bias per row of the column-major D = per output feature, in D's type (bf16)
      const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_GELU_BIAS;
      ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)), "epilogue");
    }
    if (in == DType::E4m3Rows) {
      // the scales are vectors along the output's two dimensions: A = W's per output feature, B = X's per token
      const cublasLtMatmulMatrixScale_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
      ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode)), "A scale mode");
      ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode)), "B scale mode");
      // the heuristic refuses outer-vector scaling without scale pointers (status 7 on the H200); each launch sets the
      // real ones, so any device address serves here
      const void* placeholder = workspace_.ptr;
      ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &placeholder, sizeof(placeholder)), "A scale");
      ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &placeholder, sizeof(placeholder)), "B scale");
      if (epilogue == Epilogue::BiasGelu) {
        const cudaDataType bt = CUDA_R_16BF;  // with E4M3 inputs the bias type is not implied by D's
        ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)), "bias type");
      }
    }
    const cudaDataType inT = in == DType::Bf16 ? CUDA_R_16BF : in == DType::F32 ? CUDA_R_32F : CUDA_R_8F_E4M3;
    ltCheck(cublasLtMatrixLayoutCreate(&p->a, inT, K, N, K), "layout A");
    ltCheck(cublasLtMatrixLayoutCreate(&p->b, inT, K, M, K), "layout B");
    ltCheck(cublasLtMatrixLayoutCreate(&p->d, type == DType::Bf16 ? CUDA_R_16BF : CUDA_R_32F, N, M, N), "layout D");
    cublasLtMatmulPreference_t pref;
    ltCheck(cublasLtMatmulPreferenceCreate(&pref), "preference");
    ltCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes_,
                                                 sizeof(workspaceBytes_)),
            "preference workspace");
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), p->desc, p->a,
                                                             p->b, p->d, p->d, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (epilogue != Epilogue::None && (st != CUBLAS_STATUS_SUCCESS || found == 0)) {
      delete p;
      plans_[key] = nullptr;
      return nullptr;
    }
    ltCheck(st, "heuristic");
    if (found == 0)
      throw NativeError("cuBLASLt found no algorithm for " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                        std::to_string(K));
    p->algo = res.algo;
    p->workspace = res.workspaceSize;
  } catch (...) {
    delete p;
    throw;
  }
  plans_[key] = p;
  return p;
}

bool Gemm::runBiasGelu(cudaStream_t s, int M, int N, int K, const bf16* X, const bf16* W, const bf16* bias, bf16* out) {
  static const bool enabled = [] {
    const char* env = std::getenv("SSN_GEMM_EPILOGUE");
    return !(env && std::string(env) == "0");
  }();
  if (!enabled || M == 0 || N == 0) return false;
  Plan* p = plan(M, N, K, DType::Bf16, DType::Bf16, Epilogue::BiasGelu);
  if (!p) return false;
  ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "bias pointer");
  matmul(*p, s, X, W, out);
  return true;
}

void Gemm::runFp8(cudaStream_t s, int M, int N, int K, const uint8_t* X8, const float* xScale, const uint8_t* W8,
                  const float* wScale, void* out, DType type) {
  if (M == 0 || N == 0) return;
  Plan* p = plan(M, N, K, DType::E4m3Rows, type);
  setScales(*p, xScale, wScale);
  matmul(*p, s, X8, W8, out);
}

bool Gemm::runFp8BiasGelu(cudaStream_t s, int M, int N, int K, const uint8_t* X8, const float* xScale, const uint8_t* W8,
                          const float* wScale, const bf16* bias, bf16* out) {
  if (M == 0 || N == 0) return false;
  Plan* p = plan(M, N, K, DType::E4m3Rows, DType::Bf16, Epilogue::BiasGelu);
  if (!p) return false;
  setScales(*p, xScale, wScale);
  ltCheck(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "bias pointer");
  matmul(*p, s, X8, W8, out);
  return true;
}

void Gemm::setScales(const Plan& p, const float* xScale, const float* wScale) {
  ltCheck(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &wScale, sizeof(wScale)), "A scale");
  ltCheck(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &xScale, sizeof(xScale)), "B scale");
}

void Gemm::run(cudaStream_t s, int M, int N, int K, const void* X, const void* W, DType in, void* out, DType type) {
  if (M == 0 || N == 0) return;
  matmul(*plan(M, N, K, in, type), s, X, W, out);
}

void Gemm::matmul(const Plan& p, cudaStream_t s, const void* X, const void* W, void* out) {
  const float alpha = 1.f, beta = 0.f;
  ltCheck(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), p.desc, &alpha, W, p.a, X, p.b, &beta, out, p.d, out,
                         p.d, &p.algo, workspace_.ptr, p.workspace, s),
          "matmul");
}

}  // namespace ssn
