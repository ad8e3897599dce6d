#!/usr/bin/env bash
# GPU run for issue 18 items 1-3 (one H200, about 4 minutes): build the addon; the native engine's contract and GPU
# suites with CUDA graphs off, then on; then alternating processes of the CLI bench (what users run: 1.3B shape,
# synthetic weights, bf16, sink policy, sink 3, DiT only, 12 blocks), graphs off / on at window 21 (twice) and at
# window 12, each with the Node-vs-C line (--c-loop 6: the late blocks' engine work against the same work run from C
# in the same process), and a second stream in the warm process (--second-stream 4: first block vs steady, cuDNN
# plans built / reused); last, the window-21 bench with PyTorch's cuDNN wheel instead of the system's, where the
# machine has one (the Python tool ran on PyTorch's cuDNN, the CLI on the system's).
#   source .device/boot.sh && bash native/runs/v6-graphs/run.sh      (carry .device and dist; npm run build first)
# Results under $OUT: gpu.txt, build.log, tests-graphs-{off,on}.log, bench-*.json / .err, summary.txt.
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
command -v node > /dev/null || source .device/boot.sh > "$OUT/boot.log" 2>&1
grep -q "c-loop" dist/src/cli/commands/bench.js 2> /dev/null || { echo "dist/ predates bench --c-loop: run npm run build and carry dist"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
t0=$(date +%s)
( time bash scripts/build-native.sh ) > "$OUT/build.log" 2>&1 || { echo "BUILD FAILED"; tail -30 "$OUT/build.log"; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
for g in off on; do
  t=$(date +%s)
  SINKSTREAM_TEST_CUDA_GRAPHS=$g timeout 60 node scripts/run-tests.mjs "engine/(native|contract)\.test\.ts$" > "$OUT/tests-graphs-$g.log" 2>&1
  echo "tests graphs=$g rc=$? $(( $(date +%s) - t )) s: $(tail -1 "$OUT/tests-graphs-$g.log")"
done
grep -h "graphs:\|CUDA graph capture failed" "$OUT"/tests-graphs-*.log
B=(node bin/sinkstream.js bench --config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16
   --set cache.policy=sink --set cache.sink=3 --set decoder.kind=none --blocks 12 --json --c-loop 6)
bench() {  # name, then extra arguments (a leading env VAR=value is allowed)
  local name=$1; shift
  if (( $(date +%s) - t0 > 215 )); then echo "bench $name skipped: the run's 4 minutes are nearly spent"; return; fi
  local t=$(date +%s)
  timeout 50 env "$@" "${B[@]}" "${EXTRA[@]}" > "$OUT/bench-$name.json" 2> "$OUT/bench-$name.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
EXTRA=(--set engine.cudaGraphs=off);                      bench w21-off-1
EXTRA=(--set engine.cudaGraphs=on --second-stream 4);     bench w21-on-1
EXTRA=(--set engine.cudaGraphs=off --second-stream 4);    bench w21-off-2
EXTRA=(--set engine.cudaGraphs=on);                       bench w21-on-2
EXTRA=(--set engine.cudaGraphs=off --set cache.window=12); bench w12-off
EXTRA=(--set engine.cudaGraphs=on --set cache.window=12);  bench w12-on
lib=$(python3 -c "import os, nvidia.cudnn as c; print(os.path.join(list(c.__path__)[0], 'lib', 'libcudnn.so.9'))" 2> /dev/null)
if [[ -n "$lib" && -f "$lib" ]]; then
  EXTRA=(--set engine.cudaGraphs=on); bench w21-on-torch-cudnn SSN_CUDNN_LIBRARY="$lib"
else
  echo "no PyTorch cuDNN wheel here: the system cuDNN only"
fi
node native/runs/v6-graphs/summary.mjs "$OUT" | tee "$OUT/summary.txt"
echo "total $(( $(date +%s) - t0 )) s"
