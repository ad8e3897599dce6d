#!/usr/bin/env bash
# GPU run for issue 18 item 4 (attention beyond cuDNN's bf16 rate): the own Hopper kernel (native/src/hopper-attention.cu,
# engine.attentionKernel hopper) against cuDNN's fused attention (engine.attentionKernel cudnn), the same build,
# alternating processes.
#   bash scripts/pack-device.sh --native, carry [".device"], then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v21-hopper-attention/run.sh
# 1. the kernel alone against cuDNN and a float64 reference (tools/bench/hopper-attention.py), 128- and 176-row key tiles
# 2. the native suite (the engine's flows against float64 with each kernel, the kernels against each other)
# 3. `sinkstream bench` (1.3B shape, synthetic weights, DiT only, 16 blocks): float16 exact at W 21 / S 3 and W 12 / S 3,
#    fp8 products with exact attention at W 21 / S 3, fp8 products + FP8 attention at W 21 / S 3 dense and with sparse
#    stride 3, each with hopper then cudnn
# env: KERNEL=0 skips 1, SUITE=0 skips 2; KEYS the key tiles 1 times ("176 128"); W21_ROUNDS, W12_ROUNDS, FP8_ROUNDS, FP8ATT_ROUNDS, FP8S3_ROUNDS name the rounds
#      (e.g. "1 2"; "" for none)
# Results under $OUT: summary.txt (written as it goes), runs.tar.gz, kernel-*.txt, native-tests.log, run.err
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI="--import tsx src/cli/run.ts"
W=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set decoder.kind=none)
: > "$OUT/run.err"
: > "$OUT/summary.txt"
if [[ ${KERNEL:-1} == 1 ]]; then
  for keys in ${KEYS-176 128}; do
    SSN_HOPPER_KEYS=$keys timeout 120 python3 tools/bench/hopper-attention.py --splits 1,2 --fp8 --frames ${FRAMES-3,13,21} > "$OUT/kernel-$keys.txt" 2>&1
    rc=$?
    echo "kernel, $keys-row key tiles: rc=$rc; $(grep -c ' ok$' "$OUT/kernel-$keys.txt") checks ok; $(grep 'keys 32760: hopper kernel [0-9]' "$OUT/kernel-$keys.txt" | tail -1)" | tee -a "$OUT/summary.txt"
    grep 'keys 32760: .*FP8\|keys 20280: .*FP8' "$OUT/kernel-$keys.txt" | tee -a "$OUT/summary.txt"
    # a wrong or hung kernel: stop here rather than time it
    (( rc == 0 )) || { echo "kernel check failed: nothing else run" | tee -a "$OUT/summary.txt"; exit 1; }
  done
fi
if [[ ${SUITE:-1} == 1 ]]; then
  t=$(date +%s)
  timeout 200 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
  echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")" | tee -a "$OUT/summary.txt"
  grep -h 'FAIL\|✘\|attention: auto\|auto against' "$OUT/native-tests.log" | head -10 | tee -a "$OUT/summary.txt"
fi
bench() {  # name, extra args...
  local name=$1; shift
  echo "== bench $name" >> "$OUT/run.err"
  timeout 120 node $CLI bench "$@" --blocks 16 --json > "$RUNS/bench-$name.json" 2>> "$OUT/run.err"
  echo "bench $name rc=$? $(tail -1 "$RUNS/bench-$name.json" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));const p=j.phases;console.log(`msPerBlock ${j.msPerBlock.toFixed(2)} late ${j.lateMsPerBlock.toFixed(2)} engine ${j.engineMsPerBlock.toFixed(2)} first ${j.firstBlockMs.toFixed(1)} | ${j.attention}`)' 2>&1)" | tee -a "$OUT/summary.txt"
}
pair() {  # name, round, args...: hopper, then cudnn
  local name=$1 round=$2; shift 2
  bench "$name-hopper-$round" "$@" --set engine.attentionKernel=hopper
  bench "$name-cudnn-$round" "$@" --set engine.attentionKernel=cudnn
}
for round in ${W21_ROUNDS-1 2}; do pair w21 "$round" "${W[@]}" --set cache.window=21 --set engine.dtype=float16; done
for round in ${W12_ROUNDS-1}; do pair w12 "$round" "${W[@]}" --set cache.window=12 --set engine.dtype=float16; done
for round in ${FP8_ROUNDS-1}; do pair fp8 "$round" "${W[@]}" --set cache.window=21 --set engine.dtype=fp8; done
for round in ${FP8ATT_ROUNDS-1}; do pair fp8att "$round" "${W[@]}" --set cache.window=21 --set engine.dtype=fp8 --set engine.attention=fp8; done
for round in ${FP8S3_ROUNDS-1 2}; do
  pair fp8s3 "$round" "${W[@]}" --set cache.window=21 --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3
done
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
