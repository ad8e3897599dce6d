#!/usr/bin/env bash
# GPU call 1: build the addon, native test suites, whole-pipeline benches (TAEHV, Wan VAE, DiT only)
set -u
source .device/boot.sh > $OUT/boot.log 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $OUT/gpu.txt
t0=$(date +%s)
( time bash scripts/build-native.sh ) > $OUT/build.log 2>&1 || { echo BUILD FAILED; tail -30 $OUT/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
timeout 150 node scripts/run-tests.mjs "(engine/(native|contract)|decode/native-(taehv|wan-vae))\.test\.ts$" > $OUT/tests.log 2>&1; tail -2 $OUT/tests.log
B="node bin/sinkstream.js bench --config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink --set cache.sink=3 --json"
for run in "taehv:--set decoder.kind=taehv --set decoder.dtype=float16 --blocks 30" "none:--set decoder.kind=none --blocks 30" "wanvae:--set decoder.kind=wan-vae --set decoder.dtype=float16 --blocks 16" "taehv-w12:--set decoder.kind=taehv --set decoder.dtype=float16 --set cache.window=12 --blocks 30"; do
  name=${run%%:*}; args=${run#*:}
  t=$(date +%s); timeout 170 $B $args > $OUT/bench-$name.json 2> $OUT/bench-$name.err; echo "bench $name rc=$? $(( $(date +%s) - t )) s"
done
echo "total $(( $(date +%s) - t0 )) s"
