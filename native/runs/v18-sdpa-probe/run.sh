#!/usr/bin/env bash
# GPU run for issue 18 (self-attention, the largest phase): does cuDNN have a faster configuration of its attention
# than the one its heuristics pick first? SSN_SDPA_PROBE=time times, on each shape's first run, every configuration
# cuDNN finalises (the heuristics' list, and each knob of each listed engine moved through its range) and writes the
# times to stderr; SSN_SDPA_PROBE=pick also uses the fastest from then on.
#   bash scripts/pack-device.sh --native; carry [".device"]; then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v18-sdpa-probe/run.sh
# 1. the native suite with SSN_SDPA_PROBE=pick (the picked configurations against the float64 reference)
# 2. `sinkstream bench --phases 4` (1.3B shape, synthetic weights, W 21 / S 3, DiT only, 16 blocks) with the probe
#    timing (its table into probe-*.txt); where another configuration beat the heuristics' first on the largest shape,
#    the heuristics' first (probe off) against the fastest (pick) in alternating processes (fp8 products + FP8
#    attention + sparse stride 3: two rounds; float16 exact: one); then W 12 float16 exact (not re-measured since the
#    row kernels were rewritten). BUDGET (seconds, default 420) stops starting benches past it.
# Results under $OUT: summary.txt, run.err, runs.tar.gz (the bench JSON and the probe tables), native-tests.log
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI="--import tsx src/cli/run.ts"
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set decoder.kind=none)
FP8=(--set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3)
BF16=(--set engine.dtype=float16)
: > "$OUT/run.err"
if [[ ${SUITE:-1} == 1 ]]; then
  t=$(date +%s)
  SSN_SDPA_PROBE=pick timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
  echo "native suite (pick) rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
  grep -h 'FAIL\|✘' "$OUT/native-tests.log" | head -20
fi
bench() {  # name, probe mode, window, extra args...
  local name=$1 probe=$2 window=$3; shift 3
  local t=$(date +%s)
  echo "== bench $name" >> "$OUT/run.err"
  SSN_SDPA_PROBE=$probe timeout 150 node $CLI bench "${S[@]}" --set cache.window=$window "$@" --blocks 16 --phases 4 --json \
    > "$RUNS/bench-$name.json" 2> "$RUNS/probe-$name.txt"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
T0=$(date +%s)
left() { (( $(date +%s) - T0 < ${BUDGET:-420} )); }  # seconds of benches this call can still start
better() {  # probe file: did a configuration other than the heuristics' first win on the largest shape?
  local largest=$(grep -h "fastest" "$1" | sed -E 's/.* lk ([0-9]+) .*/\1/' | sort -n | tail -1)
  [[ -n $largest ]] && grep -h "lk $largest " "$1" | grep fastest | grep -vq "heuristics' first"
}
bench fp8s3-time time 21 "${FP8[@]}"
grep -h "fastest\|refused" "$RUNS/probe-fp8s3-time.txt" | head -30
echo "probe lines: $(grep -c sdpa-probe "$RUNS/probe-fp8s3-time.txt")"
if better "$RUNS/probe-fp8s3-time.txt"; then
  for round in 1 2; do
    left && bench "fp8s3-off-$round" 0 21 "${FP8[@]}"
    left && bench "fp8s3-pick-$round" pick 21 "${FP8[@]}"
  done
else
  echo "fp8: the heuristics' first is the fastest on the largest shape; no pick runs"
fi
left && bench bf16-time time 21 "${BF16[@]}"
grep -h "fastest\|refused" "$RUNS/probe-bf16-time.txt" | head -30
if better "$RUNS/probe-bf16-time.txt"; then
  left && bench "bf16-off-1" 0 21 "${BF16[@]}"
  left && bench "bf16-pick-1" pick 21 "${BF16[@]}"
fi
left && bench "bf16w12-off-1" 0 12 "${BF16[@]}"
node native/runs/bench-summary.mjs "$RUNS" | tee "$OUT/summary.txt"
for f in "$RUNS"/*.json; do echo "$(basename "$f"): $(tail -1 "$f" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(JSON.stringify(j.phases??j.phasesMs??null))')"; done | tee -a "$OUT/summary.txt"
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
