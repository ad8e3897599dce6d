#!/usr/bin/env bash
# GPU run for issue 18 (the host's turn between forwards): a block's steps looped by the engine (`engine.denoiseIn:
# engine`, the addon's denoiseSteps: forwards back to back from C, the sampler on the host between them) against one
# engine call a step (`engine.denoiseIn: generator`), the same build, alternating processes. Ran at commit 111340e;
# the key and the addon call were reverted after it (2230409: no gain in the block period; native/NOTES.md, v17).
#   bash scripts/pack-device.sh --native, carry [".device"], then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v17-denoise-steps/run.sh
# 1. the native suite (denoiseSteps bit-exact against forwards + the generator's sampler); 2. `sinkstream bench`
# (1.3B shape, synthetic weights, W 21 / S 3, fp8 products + FP8 attention + sparse stride 3, DiT only, 16 blocks), two
# rounds. Results under $OUT: summary.txt (written as it goes), runs.tar.gz, native-tests.log, run.err
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI="--import tsx src/cli/run.ts"
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set cache.policy=sink --set cache.sink=3 --set cache.window=21 --set decoder.kind=none
   --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.sparse.stride=3)
: > "$OUT/run.err"
t=$(date +%s)
timeout 120 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")" | tee "$OUT/summary.txt"
grep -h 'FAIL\|denoiseSteps' "$OUT/native-tests.log" | head -10 | tee -a "$OUT/summary.txt"
bench() {  # name, extra args...
  local name=$1; shift
  echo "== bench $name" >> "$OUT/run.err"
  timeout 90 node $CLI bench "${S[@]}" "$@" --blocks 16 --json > "$RUNS/bench-$name.json" 2>> "$OUT/run.err"
  echo "bench $name rc=$? $(tail -1 "$RUNS/bench-$name.json" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));const e=j.engineTimings,s=j.pipeline.split;console.log(`msPerBlock ${j.msPerBlock.toFixed(1)} late ${j.lateMsPerBlock.toFixed(1)} engine ${j.engineMsPerBlock.toFixed(1)} idle/fwd ${e.idleMsPerForward.toFixed(2)} host ${s.hostMs.toFixed(1)} forwards ${s.forwardsMs.toFixed(1)}`)' 2>&1)" | tee -a "$OUT/summary.txt"
  cp "$RUNS/bench-$name.json" "$OUT/" 2>/dev/null
}
for round in 1 2; do
  bench "engine-$round" --set engine.denoiseIn=engine
  bench "generator-$round" --set engine.denoiseIn=generator
done
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
