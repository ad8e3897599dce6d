#!/usr/bin/env bash
# GPU run for issue 18 item 5: several streams' forwards as one batched forward, now captured as ONE CUDA graph (the
# batch's launches replayed from its third run on, as a single stream's are), against the same streams taking turns
# (each engine with its own graphs), in one process per shape (`bench --streams N --also-turns`).
#   bash scripts/pack-device.sh --native; carry [".device"]; then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v19-batch-graphs/run.sh
# 1. the batched-forward and native suites (a repeated batch captured once and replayed with its first run's flows)
# 2. the bundled demo model (dim 192, 4 layers; launch-bound): 1, 2, 4, 8 streams, 8 blocks
# 3. 1.3B shape, synthetic weights, bf16, sink 3, DiT only: window 12 (1, 2, 4 streams, 5 blocks); window 21 (1, 4, 8 blocks)
# Results under $OUT: summary.txt, streams.err, tests.log, streams-*.json
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI="--import tsx src/cli/run.ts"
t0=$(date +%s)
t=$(date +%s)
timeout 150 node scripts/run-tests.mjs "engine/(native-batch|native)\.test\.ts$" > "$OUT/tests.log" 2>&1
echo "tests rc=$? $(( $(date +%s) - t )) s: $(tail -1 "$OUT/tests.log")"
grep -h "graph launches\|batched vs\|FAIL\|✘" "$OUT/tests.log" | head -20
: > "$OUT/streams.err"
bench() {  # name, latest start (s into the run), timeout s, then bench arguments
  local name=$1 latest=$2 limit=$3; shift 3
  if (( $(date +%s) - t0 > latest )); then echo "bench $name skipped: started too late"; return; fi
  local t=$(date +%s)
  echo "== $name" >> "$OUT/streams.err"
  timeout "$limit" node $CLI bench --json --also-turns "$@" > "$OUT/streams-$name.json" 2>> "$OUT/streams.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
W=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink
   --set cache.sink=3 --set decoder.kind=none --set engine.maxBatch=8)
bench demo 200 40 --set engine.name=native --set engine.dtype=float16 --set engine.maxBatch=8 --streams 1,2,4,8 --blocks 8
bench w12 220 80 "${W[@]}" --set cache.window=12 --streams 1,2,4 --blocks 5
bench w21 300 60 "${W[@]}" --set cache.window=21 --streams 1,4 --blocks 8
node native/runs/v8-batch/summary.mjs "$OUT" | tee "$OUT/summary.txt"
echo "total $(( $(date +%s) - t0 )) s"
