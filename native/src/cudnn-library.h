// cuDNN is not linked: it is opened at run time where present. SSN_CUDNN_LIBRARY names a file to try first, then
// libcudnn.so.9 and libcudnn.so. Shared by the fused attention (cudnn-sdpa.cc) and the decoders' convolutions
// (cudnn-conv.cc), each of which looks up the functions it needs.
#pragma once
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace ssn {

struct CudnnLibrary {
  void* handle = nullptr;  // dlopen's handle; nullptr when none opened
  std::string name;        // the name that opened
  std::string error;       // why none opened: each name tried and dlerror's answer
};

inline CudnnLibrary openCudnnLibrary() {
  std::vector<std::string> names;
  if (const char* env = std::getenv("SSN_CUDNN_LIBRARY")) names.push_back(env);
  names.push_back("libcudnn.so.9");
  names.push_back("libcudnn.so");
  CudnnLibrary out;
  std::string tried;
  for (const auto& n : names) {
    out.handle = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (out.handle) {
      out.name = n;
      return out;
    }
    const char* e = dlerror();
    tried += (tried.empty() ? "" : "; ") + n + ": " + (e ? e : "not found");
  }
  out.error = "cuDNN not loaded (" + tried + ")";
  return out;
}

}  // namespace ssn
