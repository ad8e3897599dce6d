#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for a GPU machine that has no Node.js and no npm registry, keeping
# the working tree plus .device under the 64 MiB that travels with a device command. The device
# packer (outside this repository, named by SINKSTREAM_DEVICE_PACKER) supplies node, the Node-API headers, the GL/Vulkan debs and
# boot.sh; its node_modules would be too big, so this script packs a trimmed node_modules.tar.xz
# itself: only what TypeScript-from-source (tsx + esbuild), the tests (uvu), the engines (ONNX
# Runtime's linux-x64 build, the ONNX graph builder) and the generator load. Left out: ffmpeg and
# ffprobe binaries, playwright, typescript, @types, the other platforms' ONNX Runtime builds,
# protobufjs's CLI (its own node_modules), coverage reports. Nothing that encodes video works there.
#
#   bash scripts/pack-device.sh        # from anywhere in the checkout, after `npm ci`
#   bash scripts/pack-device.sh --render
#       for rendering files there with the native engine and decoders (`npm run build` first, carry
#       [".device", "dist"]): the CLI from dist/ only (no tsx/esbuild, tests or ONNX Runtime, which a
#       native-only run never loads) plus the npm-shipped ffmpeg, unpacked by boot.sh into
#       /tmp/devffmpeg with FFMPEG_PATH set; engine.name=ort and the ORT decoders do not run there
#   bash scripts/pack-device.sh --native
#       for runs of the native engine only (tools from source, `sinkstream bench`, the native suites) when the
#       full pack would pass 64 MiB: onnxruntime-node is left out, so engine.name=ort and the ORT decoders do not run
#   env: SINKSTREAM_DEVICE_PACKER=FILE   the device packer's pack.sh (required)
#        SINKSTREAM_DEVICE_CHECK=0       skip the local check (unpack and run the tool's --help)
#
# Then, on the GPU machine (carry [".device"]):
#   source .device/boot.sh && bash scripts/build-native.sh && node scripts/run-tests.mjs engine/native
#   source .device/boot.sh && node --import tsx tools/bench/engine-video-diff.ts --b engine.name=native ...
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
packer=${SINKSTREAM_DEVICE_PACKER:-}
[[ -n $packer ]] || { echo "pack-device: set SINKSTREAM_DEVICE_PACKER to the device packer's pack.sh" >&2; exit 2; }
[[ -f $packer ]] || { echo "pack-device: no device packer at $packer (SINKSTREAM_DEVICE_PACKER)" >&2; exit 2; }
[[ -d node_modules/tsx && -d node_modules/onnxruntime-node ]] || { echo "pack-device: node_modules is missing or incomplete: run npm ci first" >&2; exit 2; }

mkdir -p .git/info
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude

render=0 native=0
[[ "${1:-}" == "--render" ]] && render=1
[[ "${1:-}" == "--native" ]] && native=1
DEVICE_NM=0 bash "$packer"
# node without its static symbol table (strip keeps the dynamic one, which addons such as ONNX Runtime's and ours link
# against), packed tighter: ~2.3 MiB less to carry
if command -v strip > /dev/null; then
  bare=$(mktemp)
  xz -d -c .device/node.xz > "$bare" && strip "$bare" && xz -T0 -9e -c "$bare" > .device/node.xz.new && mv .device/node.xz.new .device/node.xz
  rm -f "$bare" .device/node.xz.new
fi

excludes=(
  # binaries and tools the GPU run never loads
  'node_modules/@ffprobe-installer' 'node_modules/@ffmpeg-installer' 'node_modules/ffmpeg-static'
  'node_modules/playwright-core' 'node_modules/typescript' 'node_modules/@types'
  # onnxruntime-node: only linux/x64 is used there
  'node_modules/onnxruntime-node/bin/napi-v6/win32' 'node_modules/onnxruntime-node/bin/napi-v6/darwin'
  'node_modules/onnxruntime-node/bin/napi-v6/linux/arm64'
  # onnx-proto needs protobufjs/minimal only; cli/ is pbjs/pbts with their own 19 MB of packages
  'node_modules/onnx-proto/node_modules/protobufjs/cli'
  # documentation and reports
  'node_modules/fluent-ffmpeg/coverage' 'node_modules/fluent-ffmpeg/doc'
  'node_modules/.cache'
)
if ((render)); then
  [[ -d dist/src ]] || { echo "pack-device --render: dist/ is missing: run npm run build first" >&2; exit 2; }
  ffmpeg_bin=$(node -e "console.log(require('@ffmpeg-installer/ffmpeg').path)")
  excludes+=('node_modules/onnxruntime-node' 'node_modules/tsx' 'node_modules/esbuild' 'node_modules/@esbuild' 'node_modules/uvu')
  xz -T0 -9 -c "$ffmpeg_bin" > .device/ffmpeg.xz
  chmod u+w .device/boot.sh
  cat >> .device/boot.sh <<'BOOT'
if [ -f "$_dev/ffmpeg.xz" ]; then
  mkdir -p /tmp/devffmpeg
  [ -x /tmp/devffmpeg/ffmpeg ] || { xz -d -c "$_dev/ffmpeg.xz" > /tmp/devffmpeg/ffmpeg && chmod +x /tmp/devffmpeg/ffmpeg; }
  export FFMPEG_PATH=/tmp/devffmpeg/ffmpeg
fi
BOOT
fi
((native)) && excludes+=('node_modules/onnxruntime-node')
args=()
for e in "${excludes[@]}"; do args+=(--exclude="$e"); done
tar -cf - "${args[@]}" node_modules | xz -T0 -6 > .device/node_modules.tar.xz

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
device=$(du -sb .device | cut -f1)
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$( (git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1) || true)
untracked=${untracked:-0}
dist_bytes=0
((render)) && dist_bytes=$(du -sb dist | cut -f1)
total=$((device + tracked + untracked + dist_bytes))
echo "pack-device: .device $(mib "$device") ($device bytes):"
du -b .device/* | sort -rn | while read -r b f; do echo "  $(mib "$b")  $f"; done
echo "pack-device: tracked files $(mib "$tracked"), untracked not ignored $(mib "$untracked"), with .device $(mib "$total") of 64 MiB"
if ((total > 64 * 1048576)); then
  echo "pack-device: over 64 MiB: the device call would refuse it" >&2
  exit 1
fi

# Local check: the trimmed node_modules alone runs the comparison tool from source.
if ((render)); then
  echo "pack-device: carry [\".device\", \"dist\"], then: source .device/boot.sh && node bin/sinkstream.js render --config configs/wan-1.3b.yaml --set engine.name=native ..."
  exit 0
fi
if [[ ${SINKSTREAM_DEVICE_CHECK:-1} != 0 ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  git ls-files -z | tar -cf - --null -T - | tar -xf - -C "$tmp"
  git ls-files -z --others --exclude-standard | tar -cf - --null -T - | tar -xf - -C "$tmp"
  tar -xJf .device/node_modules.tar.xz -C "$tmp"
  # the packed node runs the checks (the one the device gets)
  mkdir -p "$tmp/.packed-node" && xz -d -c .device/node.xz > "$tmp/.packed-node/node" && chmod +x "$tmp/.packed-node/node"
  export PATH="$tmp/.packed-node:$PATH"
  if ((native)); then
    (cd "$tmp" && node --import tsx tools/bench/engine-video-diff.ts --help >/dev/null) ||
      { echo "pack-device: the unpacked tree does not run tools/bench/engine-video-diff.ts --help" >&2; exit 1; }
    echo "pack-device: checked in a copy with the unpacked node_modules: engine-video-diff.ts --help (no ONNX Runtime: --native)"
    echo "pack-device: carry [\".device\"], then: source .device/boot.sh && <command>"
    exit 0
  fi
  (cd "$tmp" && node --import tsx tools/bench/engine-video-diff.ts --help >/dev/null &&
    node --import tsx tools/bench/engine-video-diff.ts --blocks 2 --set engine.threads=1 >/dev/null &&
    node scripts/run-tests.mjs engine/native >/dev/null) ||
    { echo "pack-device: the unpacked tree does not run tools/bench/engine-video-diff.ts or the engine/native tests" >&2; exit 1; }
  echo "pack-device: checked in a copy with the unpacked node_modules: engine-video-diff.ts (--help, 2 blocks on the CPU), run-tests.mjs engine/native"
fi
echo "pack-device: carry [\".device\"], then: source .device/boot.sh && <command>"
