#!/usr/bin/env bash
# Builds the optional CUDA engine (issue 5). Never run by `npm ci`: run it yourself where CUDA is present.
#   native/build/libsinkstream_native.so   the engine behind a C API (also loaded by tools/bench via ctypes)
#   native/build/sinkstream_native.node    the Node-API addon over it (engine.name: native)
#
# usage: bash scripts/build-native.sh            # or: npm run build:native
#        bash scripts/build-native.sh --check    # compile only, against a stand-in cuBLASLt header (no GPU,
#                                                # no cuBLAS needed); nothing is linked or installed
# cuDNN (fused attention, the TAEHV and Wan VAE decoders' convolutions) is not linked: it is loaded at run time when present
# (native/src/cudnn-sdpa.h, native/src/cudnn-conv.h).
# env:   CUDA_HOME (default /usr/local/cuda), SSN_CUDA_ARCH (default 90 = Hopper; e.g. "80;90"),
#        SSN_CUDA_PTX (default 1: also embed PTX of the last SSN_CUDA_ARCH, for newer GPUs),
#        NODE_API_INCLUDE (directory of node_api.h; default: next to the running node)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -n "${NODE_API_INCLUDE:-}" ]] && NODE_API_INCLUDE=$(cd "$NODE_API_INCLUDE" && pwd)
cd "$root/native"
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC="$CUDA_HOME/bin/nvcc"
[[ -x "$NVCC" ]] || NVCC=$(command -v nvcc || true)
[[ -n "$NVCC" ]] || { echo "build-native: nvcc not found (set CUDA_HOME)" >&2; exit 1; }

if [[ -z "${NODE_API_INCLUDE:-}" ]]; then
  if command -v node >/dev/null; then NODE_API_INCLUDE="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node"; fi
  [[ -f "${NODE_API_INCLUDE:-}/node_api.h" ]] || NODE_API_INCLUDE=/usr/include/node
fi

check=0
[[ "${1:-}" == "--check" ]] && check=1
out=build
extra_inc=()
if (( check )); then
  out=$(mktemp -d)
  extra_inc=(-Icompile-check)
  echo "build-native: compile check only (stand-in cuBLASLt header), objects in $out"
fi
mkdir -p "$out"

gencode=()
IFS=';' read -ra archs <<< "${SSN_CUDA_ARCH:-90}"
for a in "${archs[@]}"; do gencode+=("-gencode=arch=compute_${a},code=sm_${a}"); done
# PTX of the newest listed architecture too (SSN_CUDA_PTX=0 to leave it out): a newer GPU than any
# listed compiles it at load instead of finding no kernel image.
[[ "${SSN_CUDA_PTX:-1}" != 0 ]] && gencode+=("-gencode=arch=compute_${archs[-1]},code=compute_${archs[-1]}")

inc=(-I"$CUDA_HOME/include" -I/usr/include/x86_64-linux-gnu "${extra_inc[@]}")
nvflags=(-std=c++17 -O3 -Xcompiler -fPIC --expt-relaxed-constexpr "${gencode[@]}" "${inc[@]}")
cxxflags=(-std=c++17 -O2 -fPIC -Wall "${inc[@]}")

# The own Hopper attention kernel (wgmma, setmaxnreg) needs the architecture-specific sm_90a target; built only
# when Hopper (90) is among the targets, otherwise the file compiles without it and the engine never picks it.
hopper=(-gencode=arch=compute_90a,code=sm_90a -DSSN_HOPPER_KERNEL=1)
[[ ";${SSN_CUDA_ARCH:-90};" == *";90;"* ]] || hopper=("${gencode[@]}")

pids=()
for f in hopper-attention hopper-fp8-attention; do
  "$NVCC" -std=c++17 -O3 -Xcompiler -fPIC --expt-relaxed-constexpr "${hopper[@]}" "${inc[@]}" -c "src/$f.cu" -o "$out/$f.o" &
  pids+=($!)
done
for f in kernels attention fp8-attention key-split engine denoise-steps taehv-decoder wan-vae-decoder; do
  "$NVCC" "${nvflags[@]}" -c "src/$f.cu" -o "$out/$f.o" & pids+=($!)
done
for f in gemm capi cudnn-sdpa cudnn-conv pipeline-engine block-loop; do
  g++ "${cxxflags[@]}" -c "src/$f.cc" -o "$out/$f.o" & pids+=($!)
done
if [[ -f "$NODE_API_INCLUDE/node_api.h" ]]; then
  g++ "${cxxflags[@]}" -I"$NODE_API_INCLUDE" -DNODE_GYP_MODULE_NAME=sinkstream_native -c src/addon.cc -o "$out/addon.o" & pids+=($!)
else
  echo "build-native: node_api.h not found (set NODE_API_INCLUDE); building the C library only" >&2
fi
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
(( fail == 0 )) || { echo "build-native: compilation failed" >&2; exit 1; }
if (( check )); then echo "build-native: compile check passed"; rm -rf "$out"; exit 0; fi

# cuBLASLt: link it where it is found, and remember that folder (rpath) so loading needs no LD_LIBRARY_PATH
libdirs=()
for dir in "$CUDA_HOME/lib64" "$CUDA_HOME/targets/x86_64-linux/lib" "$CUDA_HOME/lib" /usr/lib/x86_64-linux-gnu; do
  if compgen -G "$dir/libcublasLt.so*" >/dev/null; then libdirs+=(-L"$dir" -Xlinker -rpath -Xlinker "$dir"); fi
done
(( ${#libdirs[@]} )) || { echo "build-native: libcublasLt.so not found under $CUDA_HOME or /usr/lib/x86_64-linux-gnu" >&2; exit 1; }
"$NVCC" -shared "${gencode[@]}" -o build/libsinkstream_native.so build/kernels.o build/attention.o build/fp8-attention.o build/key-split.o build/hopper-attention.o build/hopper-fp8-attention.o build/engine.o \
  build/taehv-decoder.o build/wan-vae-decoder.o build/gemm.o build/capi.o build/cudnn-sdpa.o build/cudnn-conv.o build/pipeline-engine.o build/block-loop.o build/denoise-steps.o "${libdirs[@]}" -lcublasLt -ldl -cudart static
if [[ -f build/addon.o ]]; then
  g++ -shared -o build/sinkstream_native.node build/addon.o -Lbuild -lsinkstream_native -Wl,-rpath,'$ORIGIN'
  echo "build-native: built native/build/sinkstream_native.node and native/build/libsinkstream_native.so"
else
  echo "build-native: built native/build/libsinkstream_native.so (no addon: node_api.h missing)"
fi
