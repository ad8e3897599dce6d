#!/usr/bin/env bash
# GPU run for issue 18 (the elementwise phase): the row kernels rewritten to move 16 bytes a thread with the row held
# in registers (residual + norm + modulation, q/k/v norm + RoPE, cross-attention's RMSNorm), before against after.
#   bash scripts/pack-device.sh --native; git show <before>:native/src/kernels.cu > tmp/v15-before/kernels.cu (and
#   engine.cu); carry [".device", "tmp/v15-before", "tmp/fp8-ref"]; then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v15-row-kernels/run.sh
# 1. the native suite on the new kernels
# 2. `sinkstream bench --phases 4` (1.3B shape, synthetic weights, W 21 / S 3, DiT only, 16 blocks), the addon built
#    from the before sources (SINKSTREAM_NATIVE_ADDON) and the new one in alternating processes, two rounds:
#    float16 exact, and fp8 products + FP8 attention + sparse stride 3; then the new build at sparse stride 4 and 6
# 3. QUALITY=1 (DIFF13B=0 leaves the rollout out): the demo model's frames (float16) against the CPU float32 render, both builds; the 1.3B rollout
#    (60 blocks) float16 dense against fp8 + FP8 attention + sparse stride 6 (new build)
# Results under $OUT: summary.txt, run.err, runs.tar.gz, native-tests.log (QUALITY: demo-*.json, diff-*.json)
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI="--import tsx src/cli/run.ts"
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set cache.window=21 --set decoder.kind=none)
: > "$OUT/run.err"
BEFORE=/tmp/v15-before/native/build/sinkstream_native.node
if [[ ! -f $BEFORE ]]; then
  rm -rf /tmp/v15-before && mkdir -p /tmp/v15-before && cp -r scripts native /tmp/v15-before/ && rm -rf /tmp/v15-before/native/build
  cp tmp/v15-before/*.cu /tmp/v15-before/native/src/
  bash /tmp/v15-before/scripts/build-native.sh > "$OUT/build-before.log" 2>&1; echo "before build rc=$?"
fi
if [[ ${SUITE:-1} == 1 ]]; then
  t=$(date +%s)
  timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
  echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
  grep -h 'FAIL\|✘' "$OUT/native-tests.log" | head -20
fi
bench() {  # name, addon, extra args...
  local name=$1 addon=$2; shift 2
  local t=$(date +%s)
  echo "== bench $name" >> "$OUT/run.err"
  SINKSTREAM_NATIVE_ADDON=$addon timeout 120 node $CLI bench "${S[@]}" "$@" --blocks 16 --phases 4 --json > "$RUNS/bench-$name.json" 2>> "$OUT/run.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
if [[ ${BENCH:-1} == 1 ]]; then
  AFTER=$PWD/native/build/sinkstream_native.node
  for round in 1 2; do
    bench "bf16-before-$round" $BEFORE --set engine.dtype=float16
    bench "bf16-after-$round" $AFTER --set engine.dtype=float16
    bench "fp8s3-before-$round" $BEFORE --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3
    bench "fp8s3-after-$round" $AFTER --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3
  done
  bench "fp8s4-after" $AFTER --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=4
  bench "fp8s6-after" $AFTER --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=6
  node native/runs/bench-summary.mjs "$RUNS" | tee "$OUT/summary.txt"
  for f in "$RUNS"/*.json; do echo "$(basename "$f"): $(tail -1 "$f" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(JSON.stringify(j.phases??j.phasesMs??null))')"; done | tee -a "$OUT/summary.txt"
  tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
fi
if [[ ${QUALITY:-0} == 1 ]]; then
  for v in "before:$BEFORE" "after:$PWD/native/build/sinkstream_native.node"; do
    SINKSTREAM_NATIVE_ADDON=${v#*:} timeout 120 node --import tsx tools/bench/engine-video-diff.ts --against tmp/fp8-ref/demo-cpu-fp32.frames \
      --b engine.name=native --b engine.dtype=float16 --json > "$OUT/demo-${v%%:*}.json" 2>> "$OUT/run.err"
    echo "demo float16 ${v%%:*} rc=$?: $(tail -1 "$OUT/demo-${v%%:*}.json" | head -c 400)"
  done
  [[ ${DIFF13B:-1} == 1 ]] && timeout 240 node --import tsx tools/bench/engine-video-diff.ts "${S[@]}" --set engine.dtype=float16 --blocks 60 \
    --b engine.dtype=fp8 --b engine.attention=fp8 --b cache.sparse.stride=6 --json > "$OUT/diff-13b-fp8s6.json" 2>> "$OUT/run.err"
  [[ ${DIFF13B:-1} == 1 ]] && echo "diff 1.3B fp8 + FP8 attention + stride 6 rc=$?: $(tail -1 "$OUT/diff-13b-fp8s6.json" | head -c 600)"
fi
