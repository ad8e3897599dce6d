// What FP8 products would give the native engine (issue 18 item 4, `engine.dtype: fp8` not built): cuBLASLt on this GPU
// at the 1.3B block's shapes (M = 4680 tokens), bf16 against E4M3 operands, and whether the FFN's first product can
// write E4M3 directly from its bias + GELU epilogue with the output's amax (what a fused path would need).
//
//   nvcc -O2 -std=c++17 -o /tmp/fp8-gemm-probe tools/bench/fp8-gemm-probe.cu -lcublasLt && /tmp/fp8-gemm-probe
//
// Each line: the product, the variant, milliseconds (median of 50 after 10 warm-ups, CUDA events), TFLOP/s; or
// "no algorithm" where cuBLASLt has none. Random inputs; only speed and support are reported, not accuracy.
// PROBE_ROWS=1: per-row scales (cuBLASLt's outer-vector scaling) against per-tensor and bf16, at 1, 2 and 4 blocks' rows.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CHECK_CUDA(x)                                                                      \
  do {                                                                                     \
    cudaError_t e_ = (x);                                                                  \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));                        \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

namespace {

cublasLtHandle_t handle;
void* workspace;
constexpr size_t kWorkspace = 64u << 20;

struct Variant {
  const char* name;
  cudaDataType ab, c, d;
  bool geluBias;
  bool amaxD;
  bool outerVec = false;  // A and B scaled per row (a vector each: A's per output feature, B's per token), not per tensor
};

__global__ void fillBytes(uint8_t* p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u + seed;
    x ^= x >> 13;
    // small finite values in any 8- or 16-bit format: keep the exponent bits low
    p[i] = (uint8_t)(x & 0x3f);
  }
}

/** D[N, M] (column-major) = op(A = W stored [K, N])ᵀ · B (X stored [K, M]), as the engine's products. */
void probe(const char* product, int M, int N, int K, const Variant& v) {
  const size_t elemAB = v.ab == CUDA_R_16BF ? 2 : 1, elemC = v.c == CUDA_R_16BF ? 2 : 4;
  const size_t elemD = v.d == CUDA_R_16BF ? 2 : v.d == CUDA_R_32F ? 4 : 1;
  uint8_t *A, *B, *C, *D, *bias;
  // a, b, d scales and amax D, 16 bytes apart: with the scales 4 bytes apart every FP8 launch returned
  // CUBLAS_STATUS_NOT_SUPPORTED (15) on the H200 although the heuristic had found algorithms
  float* scalars;
  float *aVec, *bVec;
  CHECK_CUDA(cudaMalloc(&aVec, (size_t)N * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&bVec, (size_t)M * sizeof(float)));
  {
    const std::vector<float> onesN(N, 1.f), onesM(M, 1.f);
    CHECK_CUDA(cudaMemcpy(aVec, onesN.data(), N * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(bVec, onesM.data(), M * sizeof(float), cudaMemcpyHostToDevice));
  }
  CHECK_CUDA(cudaMalloc(&A, (size_t)K * N * elemAB));
  CHECK_CUDA(cudaMalloc(&B, (size_t)K * M * elemAB));
  CHECK_CUDA(cudaMalloc(&C, (size_t)N * M * elemC));
  CHECK_CUDA(cudaMalloc(&D, (size_t)N * M * elemD));
  CHECK_CUDA(cudaMalloc(&bias, (size_t)N * 2));
  CHECK_CUDA(cudaMalloc(&scalars, 16 * sizeof(float)));
  fillBytes<<<1024, 256>>>(A, (size_t)K * N * elemAB, 1);
  fillBytes<<<1024, 256>>>(B, (size_t)K * M * elemAB, 2);
  CHECK_CUDA(cudaMemset(C, 0, (size_t)N * M * elemC));
  CHECK_CUDA(cudaMemset(bias, 0, (size_t)N * 2));
  const std::vector<float> ones(16, 1.f);
  CHECK_CUDA(cudaMemcpy(scalars, ones.data(), 16 * sizeof(float), cudaMemcpyHostToDevice));

  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, lc, ld;
  cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT));
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN));
  if (v.outerVec) {
    const cublasLtMatmulMatrixScale_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode));
    const float* a = aVec;
    const float* b = bVec;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a, sizeof(a));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b, sizeof(b));
  } else if (v.ab != CUDA_R_16BF) {
    const float* a = scalars;
    const float* b = scalars + 4;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a, sizeof(a));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b, sizeof(b));
  }
  if (v.d == CUDA_R_8F_E4M3) {
    const float* dScale = scalars + 8;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, &dScale, sizeof(dScale));
  }
  if (v.amaxD) {
    float* amax = scalars + 12;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, &amax, sizeof(amax));
  }
  if (v.geluBias) {
    const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_GELU_BIAS;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep));
    const void* b = bias;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof(b));
    const cudaDataType bt = CUDA_R_16BF;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt));
  }
  cublasLtMatrixLayoutCreate(&la, v.ab, K, N, K);
  cublasLtMatrixLayoutCreate(&lb, v.ab, K, M, K);
  cublasLtMatrixLayoutCreate(&lc, v.c, N, M, N);
  cublasLtMatrixLayoutCreate(&ld, v.d, N, M, N);
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kWorkspace, sizeof(kWorkspace));
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, ld, pref, 1, &res, &found);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    std::printf("%-6s %-34s M %d no algorithm (status %d)\n", product, v.name, M, (int)st);
  } else {
    const float alpha = 1.f, beta = 0.f;
    void* c = v.c == v.d ? (void*)D : (void*)C;  // in place where the types agree, as the engine's products run
    auto launch = [&] {
      return cublasLtMatmul(handle, desc, &alpha, A, la, B, lb, &beta, c, lc, D, ld, &res.algo, workspace, kWorkspace, 0);
    };
    cublasStatus_t ran = CUBLAS_STATUS_SUCCESS;
    for (int i = 0; i < 10 && ran == CUBLAS_STATUS_SUCCESS; i++) ran = launch();
    if (ran != CUBLAS_STATUS_SUCCESS) {
      std::printf("%-6s %-34s M %d matmul failed (status %d)\n", product, v.name, M, (int)ran);
    } else {
      cudaEvent_t e0, e1;
      cudaEventCreate(&e0);
      cudaEventCreate(&e1);
      std::vector<float> ms;
      for (int i = 0; i < 50; i++) {
        cudaEventRecord(e0);
        launch();
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float t = 0;
        cudaEventElapsedTime(&t, e0, e1);
        ms.push_back(t);
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      std::printf("%-6s %-34s M %d %8.4f ms  %6.0f TFLOP/s\n", product, v.name, M, med, 2.0 * M * N * K / med / 1e9);
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
    }
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatrixLayoutDestroy(ld);
  cublasLtMatmulDescDestroy(desc);
  for (void* p : {(void*)A, (void*)B, (void*)C, (void*)D, (void*)bias, (void*)scalars, (void*)aVec, (void*)bVec}) cudaFree(p);
}

}  // namespace

int main() {
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, cuBLASLt %zu\n", prop.name, cublasLtGetVersion());
  cublasLtCreate(&handle);
  CHECK_CUDA(cudaMalloc(&workspace, kWorkspace));
  const int M = 4680, d = 1536, ffn = 8960;
  const Variant bf16ToF32{"bf16 -> fp32", CUDA_R_16BF, CUDA_R_32F, CUDA_R_32F, false, false};
  const Variant bf16ToBf16{"bf16 -> bf16", CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, false, false};
  const Variant e4m3ToF32{"e4m3 -> fp32", CUDA_R_8F_E4M3, CUDA_R_32F, CUDA_R_32F, false, false};
  const Variant e4m3ToBf16{"e4m3 -> bf16", CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_16BF, false, false};
  const Variant bf16Gelu{"bf16 -> bf16, bias+GELU", CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, true, false};
  const Variant e4m3GeluBf16{"e4m3 -> bf16, bias+GELU", CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_16BF, true, false};
  const Variant e4m3GeluE4m3{"e4m3 -> e4m3, bias+GELU, amax", CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_8F_E4M3, true, true};
  // per-row scales (one per token of X, one per output feature of W): what lets the norm kernels quantise each row
  // with its own largest value, no scale carried from an earlier forward
  const Variant rowF32{"e4m3 rows -> fp32", CUDA_R_8F_E4M3, CUDA_R_32F, CUDA_R_32F, false, false, true};
  const Variant rowBf16{"e4m3 rows -> bf16", CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_16BF, false, false, true};
  const Variant rowGelu{"e4m3 rows -> bf16, bias+GELU", CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_16BF, true, false, true};
  // the engine: qkv and cross q in bf16 out, o / cross o / FFN2 in fp32 out (added to the fp32 residual), FFN1 GELU;
  // FP8 also at M padded to a multiple of 16 (4688), in case the token count's 4680 = 8 x 585 is refused
  if (std::getenv("PROBE_ROWS")) {
    for (const int m : {M, 2 * M, 4 * M}) {
      probe("qkv", m, 3 * d, d, bf16ToBf16);
      probe("qkv", m, 3 * d, d, e4m3ToBf16);
      probe("qkv", m, 3 * d, d, rowBf16);
      probe("cq", m, d, d, bf16ToBf16);
      probe("cq", m, d, d, rowBf16);
      probe("ffn1", m, ffn, d, bf16Gelu);
      probe("ffn1", m, ffn, d, rowGelu);
      probe("ffn2", m, d, ffn, bf16ToF32);
      probe("ffn2", m, d, ffn, e4m3ToF32);
      probe("ffn2", m, d, ffn, rowF32);
    }
  }
  for (const int m : std::getenv("PROBE_ROWS") ? std::vector<int>{} : std::vector<int>{M, 4688}) {
    const bool bf = m == M;
    if (bf) probe("qkv", m, 3 * d, d, bf16ToBf16);
    probe("qkv", m, 3 * d, d, e4m3ToBf16);
    if (bf) probe("o", m, d, d, bf16ToF32);
    probe("o", m, d, d, e4m3ToF32);
    if (bf) probe("ffn1", m, ffn, d, bf16Gelu);
    probe("ffn1", m, ffn, d, e4m3GeluBf16);
    probe("ffn1", m, ffn, d, e4m3GeluE4m3);
    if (bf) probe("ffn2", m, d, ffn, bf16ToF32);
    probe("ffn2", m, d, ffn, e4m3ToF32);
    probe("ffn2", m, d, ffn, e4m3ToBf16);
  }
  cudaFree(workspace);
  cublasLtDestroy(handle);
  return 0;
}
