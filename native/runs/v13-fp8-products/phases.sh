#!/usr/bin/env bash
# Where a block's device time goes now (`sinkstream bench --phases`: C-loop blocks profiled after a 16-block stream,
# at the late blocks' cache size), 1.3B shape, synthetic weights, W 21 / S 3: float16 exact, fp8 products + FP8
# attention, and those with sparse stride 3. Also the native suite. On one H200:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v13-fp8-products/phases.sh
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
CLI="--import tsx src/cli/run.ts"
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set cache.window=21 --set decoder.kind=none)
t=$(date +%s)
timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
grep -h 'fp8 products vs\|fp8 vs exact\|FAIL' "$OUT/native-tests.log"
run() { local name=$1; shift; local t=$(date +%s); timeout 120 node $CLI bench "${S[@]}" "$@" --blocks 16 --phases 4 > "$OUT/phases-$name.txt" 2> "$OUT/phases-$name.err"; echo "$name rc=$? $(( $(date +%s) - t )) s"; grep -h "ms per block\|phases\|^engine" "$OUT/phases-$name.txt"; tail -2 "$OUT/phases-$name.err"; }
run bf16 --set engine.dtype=float16
run fp8-all --set engine.dtype=fp8 --set engine.attention=fp8
run fp8-all-s3 --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3
