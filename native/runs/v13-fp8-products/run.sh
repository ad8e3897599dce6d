#!/usr/bin/env bash
# GPU run for issue 18 item 4: FP8 products (`engine.dtype: fp8`): q/k/v, cross-attention's q and the FFN's two
# products in E4M3 with a scale per row of each operand (cuBLASLt's outer-vector scaling), the norms writing E4M3.
#   bash scripts/pack-device.sh --native, carry [".device", "tmp/fp8-ref"], then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v13-fp8-products/run.sh
# 1. the native suite (fp8 products against bf16, graphed, shared weights; with FP8 attention)
# 2. `sinkstream bench` (1.3B shape, synthetic weights, sink S 3, DiT only, 16 blocks), bf16 products (float16)
#    against fp8 products in alternating processes: exact attention W 21 (two rounds) and W 12; FP8 attention W 21;
#    FP8 attention + sparse stride 3, W 21
# 3. quality (QUALITY=1; BENCH=0 leaves 2 out): the demo model's native frames against the CPU float32 render
#    (tmp/fp8-ref/demo-cpu-fp32.frames, made with `node --import tsx tools/bench/engine-video-diff.ts --blocks 20
#    --save tmp/fp8-ref/demo-cpu-fp32.frames`, carried), and the 1.3B rollout (60 blocks), bf16 (A) against fp8 (B)
# Results under $OUT: summary.txt, run.err, runs.tar.gz, native-tests.log (QUALITY: demo-*.json, diff-13b-*.json)
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI=${SINKSTREAM_CLI:---import tsx src/cli/run.ts}
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set decoder.kind=none)
: > "$OUT/run.err"
if [[ ${SUITE:-1} == 1 ]]; then
  t=$(date +%s)
  timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
  echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
  grep -h 'fp8 products vs\|fp8 vs exact\|FAIL' "$OUT/native-tests.log"
fi
bench() {  # name, extra args...
  local name=$1; shift
  local t=$(date +%s)
  echo "== bench $name" >> "$OUT/run.err"
  timeout 90 node $CLI bench "${S[@]}" "$@" --blocks 16 --json > "$RUNS/bench-$name.json" 2>> "$OUT/run.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
if [[ ${BENCH:-1} == 1 ]]; then
  for round in 1 2; do
    bench "w21-bf16-$round" --set engine.dtype=float16 --set cache.window=21
    bench "w21-fp8-$round" --set engine.dtype=fp8 --set cache.window=21
  done
  bench w12-bf16 --set engine.dtype=float16 --set cache.window=12
  bench w12-fp8 --set engine.dtype=fp8 --set cache.window=12
  bench w21-attn8-bf16 --set engine.dtype=float16 --set engine.attention=fp8 --set cache.window=21
  bench w21-attn8-fp8 --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.window=21
  bench s3-attn8-bf16 --set engine.dtype=float16 --set engine.attention=fp8 --set cache.window=21 --set cache.sparse.stride=3
  bench s3-attn8-fp8 --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.window=21 --set cache.sparse.stride=3
  node native/runs/bench-summary.mjs "$RUNS" | tee "$OUT/summary.txt"
  tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
fi
if [[ ${QUALITY:-0} == 1 ]]; then
  for v in "float16 exact" "fp8 exact" "fp8 fp8"; do
    set -- $v
    timeout 120 node --import tsx tools/bench/engine-video-diff.ts --against tmp/fp8-ref/demo-cpu-fp32.frames \
      --b engine.name=native --b engine.dtype=$1 --b engine.attention=$2 --json > "$OUT/demo-$1-$2.json" 2>> "$OUT/run.err"
    echo "demo dtype $1 attention $2 rc=$?: $(tail -1 "$OUT/demo-$1-$2.json" | head -c 400)"
  done
  for v in "fp8 exact" "fp8 fp8"; do
    set -- $v
    timeout 200 node --import tsx tools/bench/engine-video-diff.ts "${S[@]}" --set engine.dtype=float16 --set cache.window=21 \
      --blocks 60 --b engine.dtype=$1 --b engine.attention=$2 --json > "$OUT/diff-13b-$1-$2.json" 2>> "$OUT/run.err"
    echo "diff 1.3B dtype $1 attention $2 rc=$?: $(tail -1 "$OUT/diff-13b-$1-$2.json" | head -c 600)"
  done
fi
