# sinkstream on a GPU host: Node 22 LTS, ffmpeg, cuDNN (the native engine's fused attention), the
# Vulkan loader for ONNX Runtime's WebGPU provider, and the optional native CUDA engine built in a
# first stage. Runs as an unprivileged user; HEALTHCHECK asks the server's /healthz.
#   docker build -t sinkstream .
#   docker run --gpus all -p 8080:8080 -e SINKSTREAM_TOKEN=secret sinkstream                  # serve
#   docker run --gpus all -v $PWD/out:/out sinkstream render --out /out/clip.mp4                # render
#   docker run --gpus all sinkstream bench --config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16
ARG CUDA_VERSION=12.8.1
ARG NODE_MAJOR=22

# ---- stage 1: the CUDA addon (native/), against the devel toolkit (nvcc, cuBLASLt headers)
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS native
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends g++ libnode-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY scripts/build-native.sh ./scripts/build-native.sh
COPY native ./native
# Ampere (A100) and Hopper (H100/H200) machine code, plus Hopper PTX that newer GPUs compile at load.
# NODE_API_INCLUDE: Node-API is ABI-stable across Node versions.
RUN SSN_CUDA_ARCH="80;90" SSN_CUDA_PTX=1 NODE_API_INCLUDE=/usr/include/node bash scripts/build-native.sh

# ---- stage 2: the runtime (cuDNN runtime libraries included: without them the native engine falls
# back to its own, slower attention kernel; the engine's provider string, logged at start, says which runs)
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu24.04
ARG NODE_MAJOR
ENV DEBIAN_FRONTEND=noninteractive \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics,video \
    NODE_ENV=production
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg ffmpeg libvulkan1 \
 && mkdir -p /etc/apt/keyrings \
 && curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor -o /etc/apt/keyrings/nodesource.gpg \
 && echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_${NODE_MAJOR}.x nodistro main" > /etc/apt/sources.list.d/nodesource.list \
 && apt-get update && apt-get install -y --no-install-recommends nodejs \
 && apt-get purge -y gnupg && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/sinkstream sinkstream

WORKDIR /app
# The system ffmpeg (FFMPEG_PATH takes precedence over every other candidate); MALLOC_ARENA_MAX: glibc
# keeps fewer per-thread arenas, so memory of ended generator threads goes back (docs/serving.md).
ENV FFMPEG_PATH=/usr/bin/ffmpeg \
    MALLOC_ARENA_MAX=2

# Dependencies first, in their own layer: a change of sources does not reinstall them.
# --ignore-scripts: `prepare` (tsc) needs the sources, copied below; .npmrc skips ONNX Runtime's CUDA download.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --include=dev --ignore-scripts

COPY tsconfig.json ./
COPY bin ./bin
COPY scheduler ./scheduler
COPY src ./src
RUN npm run build && npm prune --omit=dev && npm cache clean --force
COPY configs ./configs
COPY models ./models
COPY --from=native /build/native/build ./native/build

USER sinkstream
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "bin/sinkstream.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
