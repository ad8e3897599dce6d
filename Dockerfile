# sinkstream on a GPU host: Node 22 LTS, ffmpeg, cuDNN (the native engine's fused attention), the
# Vulkan loader for ONNX Runtime's WebGPU provider, and the optional native CUDA engine built in a
# first stage. Runs as an unprivileged user; HEALTHCHECK asks the server's /healthz.
#   docker build -t sinkstream .
#   docker run --gpus all -p 8080:8080 -e SINKSTREAM_TOKEN=secret sinkstream                  # serve
#   docker run --gpus all -v $PWD/out:/out sinkstream render --out /out/clip.mp4                # render
#     (/app is read-only to the image's user: write into a mounted folder it may write, e.g. with
#      --user "$(id -u):$(id -g)"; serve's recordings go to /app/recordings, writable, or a volume there)
#   docker run --gpus all sinkstream bench --config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16
ARG CUDA_VERSION=12.8.1
ARG NODE_MAJOR=22

# ---- stage 1: the CUDA addon (native/), against the devel toolkit (nvcc, cuBLASLt headers)
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS native
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends g++ libnode-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY scripts/build-native.sh ./scripts/build-native.sh
COPY native ./native
# Ampere (A100) and Hopper (H100/H200) machine code, plus Hopper PTX that newer GPUs compile at load.
# NODE_API_INCLUDE: Node-API is ABI-stable across Node versions.
RUN SSN_CUDA_ARCH="80;90" SSN_CUDA_PTX=1 NODE_API_INCLUDE=/usr/include/node bash scripts/build-native.sh

# ---- stage 2: the TypeScript compiled with the dev dependencies, which stay in this stage
FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY scheduler ./scheduler
COPY src ./src
RUN npm run build

# ---- stage 3: the runtime (cuDNN runtime libraries included: without them the native engine falls
# back to its own, slower attention kernel; the engine's provider string, logged at start, says which runs)
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu24.04
ARG NODE_MAJOR
ARG DEBIAN_FRONTEND=noninteractive
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics,video \
    NODE_ENV=production
# pipefail: a failed curl must fail the step, not hand gpg an empty key
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg ffmpeg libvulkan1 \
 && mkdir -p /etc/apt/keyrings \
 && curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor -o /etc/apt/keyrings/nodesource.gpg \
 && echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_${NODE_MAJOR}.x nodistro main" > /etc/apt/sources.list.d/nodesource.list \
 && apt-get update && apt-get install -y --no-install-recommends nodejs \
 && apt-get purge -y gnupg && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/sinkstream sinkstream \
 && mkdir -p /app/recordings && chown sinkstream:sinkstream /app/recordings

WORKDIR /app
# The system ffmpeg (FFMPEG_PATH takes precedence over every other candidate); MALLOC_ARENA_MAX: glibc
# keeps fewer per-thread arenas, so memory of ended generator threads goes back (docs/serving.md).
ENV FFMPEG_PATH=/usr/bin/ffmpeg \
    MALLOC_ARENA_MAX=2

# Production dependencies first, in their own layer (a change of sources does not reinstall them), and
# only those: no dev dependencies, no optional ones (the npm-shipped ffmpeg builds: the system ffmpeg
# is used), no install scripts (no `prepare`, no ONNX Runtime CUDA download), npm's cache not kept.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force
# The files of the npm package (package.json "files"): compiled dist/, bin, configs, the demo model,
# the viewer's files; the native engine built in stage 1.
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY configs ./configs
COPY models ./models
COPY src/serve/public ./src/serve/public
COPY --from=native /build/native/build ./native/build

USER sinkstream
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "bin/sinkstream.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
