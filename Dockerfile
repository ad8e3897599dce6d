# sinkstream on a GPU host: CUDA runtime (for the optional native engine and the WebGPU provider's
# Vulkan driver, which the NVIDIA container toolkit mounts), Node 20, ffmpeg.
#   docker build -t sinkstream .
#   docker run --gpus all -p 8080:8080 -e SINKSTREAM_TOKEN=secret sinkstream            # serve
#   docker run --gpus all -v $PWD/out:/out sinkstream render --out /out/clip.mp4          # render
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

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
# The system ffmpeg is used (FFMPEG_PATH overrides the bundled fallbacks).
ENV FFMPEG_PATH=/usr/bin/ffmpeg
COPY package.json package-lock.json .npmrc ./
COPY bin ./bin
COPY src ./src
COPY scheduler ./scheduler
COPY tsconfig.json ./
# npm ci runs `prepare` (tsc), which needs the dev dependencies; prune them afterwards.
RUN npm ci --include=dev && npm prune --omit=dev
COPY configs ./configs
COPY models ./models
COPY native ./native

EXPOSE 8080
ENTRYPOINT ["node", "bin/sinkstream.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
