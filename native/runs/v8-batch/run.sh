#!/usr/bin/env bash
# GPU run for issue 18 item 5 (one H200, about 2 minutes; a bench that would start late is skipped): several streams'
# forwards as one batched forward.
# Build the addon; the native suites (the batched forward against each stream alone and the float64 reference, the
# engine contract with its together-vs-alone check, the batcher and the stand-in); then `bench --streams` with
# engine.maxBatch >= 2 and --also-turns (each count batched, then taking turns on the same engines, in one process):
#   1.3B shape (configs/wan-1.3b.yaml, synthetic weights, bf16, sink policy, sink 3, DiT only), window 21: 1 and 4
#     streams, 8 blocks each (blocks 4-7 are counted; the window fills at block 6; 8 streams at window 21 would need
#     ~8 x 16 GB of cache buffers: left out)
#   the bundled demo model (configs/default.yaml, dim 192, 4 layers, 16x16 latents), the smaller shape: 1, 2, 4, 8
#   1.3B shape, window 12: 1, 2, 4, 8 streams, 5 blocks each (the window is full from block 3; blocks 3-4 are counted)
#   source .device/boot.sh && bash native/runs/v8-batch/run.sh      (carry .device and dist; npm run build first)
# Results under $OUT (8 files): gpu.txt, build.log, tests.log, streams-w12.json, streams-w21.json, streams-demo.json,
# streams.err (every bench's stderr), summary.txt.
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
grep -q "also-turns" dist/src/cli/commands/bench.js 2> /dev/null || { echo "dist/ predates bench --also-turns: run npm run build and carry dist"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
t0=$(date +%s)
( time bash scripts/build-native.sh ) > "$OUT/build.log" 2>&1 || { echo "BUILD FAILED"; tail -30 "$OUT/build.log"; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
t=$(date +%s)
timeout 60 node scripts/run-tests.mjs "engine/(native-batch|native-batch-stand-in|forward-batcher|native|contract)\.test\.ts$" > "$OUT/tests.log" 2>&1
echo "tests rc=$? $(( $(date +%s) - t )) s: $(tail -1 "$OUT/tests.log")"
grep -h "batched vs\|FAIL" "$OUT/tests.log" | head -20
: > "$OUT/streams.err"
bench() {  # name, latest start (s into the run), timeout s, then bench arguments
  local name=$1 latest=$2 limit=$3; shift 3
  if (( $(date +%s) - t0 > latest )); then echo "bench $name skipped: started too late for the run's ~2 minutes"; return; fi
  local t=$(date +%s)
  echo "== $name" >> "$OUT/streams.err"
  timeout "$limit" node bin/sinkstream.js bench --json --also-turns "$@" > "$OUT/streams-$name.json" 2>> "$OUT/streams.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
W=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink
   --set cache.sink=3 --set decoder.kind=none --set engine.maxBatch=8)
# the issue's target first (4 streams at window 21), then the smaller shape, then window 12 up to 8 streams
bench w21 40 45 "${W[@]}" --set cache.window=21 --streams 1,4 --blocks 8
bench demo 85 15 --set engine.name=native --set engine.dtype=float16 --set engine.maxBatch=8 --streams 1,2,4,8 --blocks 8
bench w12 90 55 "${W[@]}" --set cache.window=12 --streams 1,2,4,8 --blocks 5
node native/runs/v8-batch/summary.mjs "$OUT" | tee "$OUT/summary.txt"
echo "total $(( $(date +%s) - t0 )) s"
