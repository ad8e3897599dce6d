#!/usr/bin/env bash
# GPU run for issue 18 (the host's turn between forwards): a block's steps looped by the engine with the latent kept on
# the GPU and the sampler's step as a kernel (`engine.denoiseIn: engine`, the addon's denoiseSteps) against one engine
# call a step (`engine.denoiseIn: generator`), the same build, alternating processes.
#   bash scripts/pack-device.sh --native, carry [".device"], then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v20-sampler-on-gpu/run.sh
# 1. the native suite (denoiseSteps bit-exact against forwards + the generator's sampler, graphs off and on)
# 2. `sinkstream bench` (1.3B shape, synthetic weights, W 21 / S 3, DiT only, 16 blocks): fp8 products + FP8 attention
#    + sparse stride 3, two rounds; float16 exact, one round; the bundled demo model (configs/default.yaml on the
#    native engine, bf16), two rounds
# env: SUITE=0 skips 1; FIRST=generator runs each pair generator first; FP8_ROUNDS, BF16_ROUNDS, DEMO_ROUNDS name the
#      rounds (e.g. "3 4"; "" for none)
# Results under $OUT: summary.txt (written as it goes), runs.tar.gz, native-tests.log, run.err
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI="--import tsx src/cli/run.ts"
W=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set cache.window=21 --set decoder.kind=none)
FP8=(--set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3)
DEMO=(--set engine.name=native --set engine.dtype=float16)
: > "$OUT/run.err"
if [[ ${SUITE:-1} == 1 ]]; then
  t=$(date +%s)
  timeout 150 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
  echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")" | tee "$OUT/summary.txt"
  grep -h 'FAIL\|✘' "$OUT/native-tests.log" | head -10 | tee -a "$OUT/summary.txt"
fi
bench() {  # name, extra args...
  local name=$1; shift
  echo "== bench $name" >> "$OUT/run.err"
  timeout 90 node $CLI bench "$@" --blocks 16 --json > "$RUNS/bench-$name.json" 2>> "$OUT/run.err"
  echo "bench $name rc=$? $(tail -1 "$RUNS/bench-$name.json" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));const e=j.engineTimings,s=j.pipeline.split;console.log(`msPerBlock ${j.msPerBlock.toFixed(2)} late ${j.lateMsPerBlock.toFixed(2)} engine ${j.engineMsPerBlock.toFixed(2)} forwards ${e.forwards} idle/fwd ${e.idleMsPerForward.toFixed(2)} host ${s.hostMs.toFixed(2)} forwards ${s.forwardsMs.toFixed(2)}`)' 2>&1)" | tee -a "$OUT/summary.txt"
}
pair() {  # name, round, args...: both ways, in the order FIRST (engine or generator) says
  local name=$1 round=$2; shift 2
  local a=${FIRST:-engine} b=generator
  [[ $a == generator ]] && b=engine
  bench "$name-$a-$round" "$@" --set engine.denoiseIn=$a
  bench "$name-$b-$round" "$@" --set engine.denoiseIn=$b
}
for round in ${FP8_ROUNDS:-1 2}; do pair fp8s3 "$round" "${W[@]}" "${FP8[@]}"; done
for round in ${BF16_ROUNDS:-1}; do pair bf16 "$round" "${W[@]}" --set engine.dtype=float16; done
for round in ${DEMO_ROUNDS:-1 2}; do pair demo "$round" "${DEMO[@]}"; done
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
