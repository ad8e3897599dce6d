# sinkstream on a GPU host: Node 20, ffmpeg, the Vulkan loader for ONNX Runtime's WebGPU provider, and
# the optional native CUDA engine built in a first stage.
#   docker build -t sinkstream .
#   docker run --gpus all -p 8080:8080 -e SINKSTREAM_TOKEN=secret sinkstream                  # serve
#   docker run --gpus all -v $PWD/out:/out sinkstream render --out /out/clip.mp4                # render
#   docker run --gpus all sinkstream bench --config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16
ARG CUDA_VERSION=12.8.1

# ---- stage 1: the CUDA addon (native/), against the devel toolkit (nvcc, cuBLASLt headers)
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS native
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends g++ libnode-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY native ./native
COPY scripts/build-native.sh ./scripts/build-native.sh
# Hopper (H100/H200) and Ampere (A100); NODE_API_INCLUDE: Node-API is ABI-stable across Node versions.
RUN SSN_CUDA_ARCH="80;90" NODE_API_INCLUDE=/usr/include/node bash scripts/build-native.sh

# ---- stage 2: the runtime
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics,video \
    NODE_ENV=production
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg ffmpeg libvulkan1 \
 && mkdir -p /etc/apt/keyrings \
 && curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor -o /etc/apt/keyrings/nodesource.gpg \
 && echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main" > /etc/apt/sources.list.d/nodesource.list \
 && apt-get update && apt-get install -y --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The system ffmpeg (FFMPEG_PATH takes precedence over the npm-shipped fallbacks).
ENV FFMPEG_PATH=/usr/bin/ffmpeg
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY scheduler ./scheduler
COPY scripts ./scripts
# npm ci runs `prepare` (tsc), which needs the dev dependencies; they are pruned afterwards.
RUN npm ci --include=dev && npm prune --omit=dev
COPY configs ./configs
COPY models ./models
COPY --from=native /build/native/build ./native/build

EXPOSE 8080
ENTRYPOINT ["node", "bin/sinkstream.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
