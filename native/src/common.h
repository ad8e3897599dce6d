// Shared helpers of the native engine: error handling, bf16 type, small device utilities.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ssn {

using bf16 = __nv_bfloat16;

/** The largest finite E4M3 value (FP8 attention's and FP8 products' quantisation map a tensor's or row's largest
    magnitude here, or below it). */
constexpr float kE4m3Max = 448.f;

/** Thrown by every failing CUDA / cuBLASLt call; the C API turns it into an error string. */
struct NativeError : std::runtime_error {
  explicit NativeError(const std::string& m) : std::runtime_error(m) {}
};

inline void cudaCheck(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) {
    throw NativeError(std::string(what) + " failed: " + cudaGetErrorString(e) + " (" + file + ":" +
                      std::to_string(line) + ")");
  }
}
#define CUDA_CHECK(x) ::ssn::cudaCheck((x), #x, __FILE__, __LINE__)
#define CUDA_LAUNCH_CHECK() ::ssn::cudaCheck(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

inline int ceilDiv(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }

/** A device allocation that grows on demand and never shrinks (workspaces, cache buffers). */
struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }
  void release() {
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
  }
  /** Ensures at least `n` bytes; contents are NOT preserved when it grows. */
  void reserve(size_t n) {
    if (n <= bytes) return;
    release();
    CUDA_CHECK(cudaMalloc(&ptr, n));
    bytes = n;
  }
  template <typename T> T* as() const { return static_cast<T*>(ptr); }
};

}  // namespace ssn
