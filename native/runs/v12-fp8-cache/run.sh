#!/usr/bin/env bash
# GPU run for issue 18 item 4: FP8 attention keeps the cache's E4M3 keys and values between cache updates
# (Fp8Attention::runLayer; SSN_FP8_KEEP_CACHE=0 quantises every row at every call, as before).
#   bash scripts/pack-device.sh --native, carry [".device"], then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v12-fp8-cache/run.sh
# 1. the native suite (kept against requantised, graphed; fp8 against exact; split against whole)
# 2. `sinkstream bench` (1.3B shape, synthetic weights, float16, fp8 attention, sink S 3, DiT only, 16 blocks),
#    requantising every call and keeping, in alternating processes: W 21 (two rounds), W 12, W 21 sparse stride 3
# 3. with QUALITY=1 (BENCH=0 leaves 2 out): quality, below
# Results under $OUT: keep-summary.txt, keep.err, keep-runs.tar.gz, native-tests.log (QUALITY: demo-keep{0,1}.json,
# diff-13b-keep.json)
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI=${SINKSTREAM_CLI:---import tsx src/cli/run.ts}
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set engine.attention=fp8
   --set cache.policy=sink --set cache.sink=3 --set decoder.kind=none)
: > "$OUT/keep.err"
t=$(date +%s)
timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
grep -h 'kept cache\|split vs whole\|fp8 vs exact' "$OUT/native-tests.log"
bench() {  # name, SSN_FP8_KEEP_CACHE, extra args...
  local name=$1 keep=$2; shift 2
  local t=$(date +%s)
  echo "== bench $name" >> "$OUT/keep.err"
  SSN_FP8_KEEP_CACHE=$keep timeout 90 node $CLI bench "${S[@]}" "$@" --blocks 16 --json > "$RUNS/bench-$name.json" 2>> "$OUT/keep.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
if [[ ${BENCH:-1} == 1 ]]; then
for round in 1 2; do
  bench "w21-requant-$round" 0 --set cache.window=21
  bench "w21-keep-$round" 1 --set cache.window=21
done
bench w12-requant 0 --set cache.window=12
bench w12-keep 1 --set cache.window=12
bench s3-requant 0 --set cache.window=21 --set cache.sparse.stride=3
bench s3-keep 1 --set cache.window=21 --set cache.sparse.stride=3
node native/runs/bench-summary.mjs "$RUNS" | tee "$OUT/keep-summary.txt"
tar -czf "$OUT/keep-runs.tar.gz" -C "$RUNS" .
fi

# quality (QUALITY=1; the demo reference first made here with `node --import tsx tools/bench/engine-video-diff.ts
# --blocks 20 --save tmp/fp8-ref/demo-cpu-fp32.frames`, carried): the demo model's native fp8 frames, kept and
# requantised, against the CPU float32 render; the 1.3B rollout (60 blocks), exact (A) against fp8 kept (B)
if [[ ${QUALITY:-0} == 1 ]]; then
  for keep in 0 1; do
    SSN_FP8_KEEP_CACHE=$keep timeout 120 node --import tsx tools/bench/engine-video-diff.ts --against tmp/fp8-ref/demo-cpu-fp32.frames \
      --b engine.name=native --b engine.dtype=float16 --b engine.attention=fp8 --json > "$OUT/demo-keep$keep.json" 2>> "$OUT/keep.err"
    echo "demo keep=$keep rc=$?: $(tail -1 "$OUT/demo-keep$keep.json" | head -c 400)"
  done
  timeout 200 node --import tsx tools/bench/engine-video-diff.ts "${S[@]/engine.attention=fp8/engine.attention=exact}" --blocks 60 \
    --b engine.attention=fp8 --set cache.window=21 --json > "$OUT/diff-13b-keep.json" 2>> "$OUT/keep.err"
  echo "diff 1.3B rc=$?: $(tail -1 "$OUT/diff-13b-keep.json" | head -c 600)"
fi
