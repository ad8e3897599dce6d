#!/usr/bin/env bash
# GPU run for issue 18 (the elementwise phase): the FFN's hidden rows quantised to E4M3 from one read (the row held in
# registers) instead of two, before (717a1e0) against after.
#   bash scripts/pack-device.sh --native; git show 717a1e0:native/src/kernels.cu > tmp/v16-before/kernels.cu (and
#   engine.cu); carry [".device", "tmp/v16-before"]; then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v16-quantize-rows/run.sh
# 1. the native suite on the new kernel; 2. `sinkstream bench --phases 4` (1.3B shape, synthetic weights, W 21 / S 3,
# fp8 products + FP8 attention + sparse stride 3, DiT only, 16 blocks), before and after in alternating processes,
# two rounds. Results under $OUT: summary.txt, runs.tar.gz, native-tests.log, run.err
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI="--import tsx src/cli/run.ts"
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set cache.window=21 --set decoder.kind=none)
: > "$OUT/run.err"
BEFORE=/tmp/v16-before/native/build/sinkstream_native.node
rm -rf /tmp/v16-before && mkdir -p /tmp/v16-before && cp -r scripts native /tmp/v16-before/ && rm -rf /tmp/v16-before/native/build
cp tmp/v16-before/*.cu /tmp/v16-before/native/src/
bash /tmp/v16-before/scripts/build-native.sh > "$OUT/build-before.log" 2>&1 & bpid=$!
t=$(date +%s)
timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
grep -h 'FAIL\|✘\|fp8 products vs' "$OUT/native-tests.log" | head -20
wait $bpid; echo "before build rc=$?"
bench() {  # name, addon, extra args...
  local name=$1 addon=$2; shift 2
  local t=$(date +%s)
  echo "== bench $name" >> "$OUT/run.err"
  SINKSTREAM_NATIVE_ADDON=$addon timeout 120 node $CLI bench "${S[@]}" "$@" --blocks 16 --phases 4 --json > "$RUNS/bench-$name.json" 2>> "$OUT/run.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
AFTER=$PWD/native/build/sinkstream_native.node
F=(--set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3)
for round in 1 2; do
  bench "fp8s3-before-$round" $BEFORE "${F[@]}"
  bench "fp8s3-after-$round" $AFTER "${F[@]}"
done
node native/runs/bench-summary.mjs "$RUNS" | tee "$OUT/summary.txt"
for f in "$RUNS"/*.json; do echo "$(basename "$f"): $(tail -1 "$f" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(JSON.stringify(j.phases))')"; done | tee -a "$OUT/summary.txt"
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
