#!/usr/bin/env bash
# GPU run for issue 18 item 4 (FP8 attention, engine.attention: fp8): one H200, about 8 minutes.
#   source .device/boot.sh && bash scripts/build-native.sh && SINKSTREAM_CLI="--import tsx src/cli/run.ts" bash native/runs/v10-fp8/run.sh
#   (scripts/pack-device.sh --native first; carry .device and tmp/fp8-ref, the demo reference below: with dist/ too
#   the call passed 64 MiB, so the CLI ran from source, which is how the committed results were made)
# 1. the native suite (test/engine/native.test.ts: FP8 flows against the exact bf16 engine, graphed and direct)
# 2. quality at the 1.3B shape (configs/wan-1.3b.yaml, synthetic weights, float16, sink policy, window 21, sink 3, DiT only):
#    tools/bench/engine-video-diff.ts, 60 blocks, exact (A) against fp8 (B): per-block latent relative error
# 3. quality on the demo model: the frames of B (native float16, exact and fp8) against the CPU float32 render
#    saved beforehand here with `node --import tsx tools/bench/engine-video-diff.ts --blocks 20 --save
#    tmp/fp8-ref/demo-cpu-fp32.frames` (DEMO_REF names another file): PSNR per block and over the clip
# 4. speed: `sinkstream bench`, 16 blocks, exact / fp8 / sparse stride 3 / sparse stride 3 + fp8, in alternating
#    processes, two rounds
# SINKSTREAM_CLI: the CLI entry to run (default bin/sinkstream.js, which needs dist/; or "--import tsx src/cli/run.ts").
# Results under $OUT (a device call brings back at most eight files): fp8-summary.txt, fp8.err, fp8-runs.tar.gz,
# native-tests.log
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink
   --set cache.window=21 --set cache.sink=3 --set decoder.kind=none)
: > "$OUT/fp8.err"
t=$(date +%s)
timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
grep -h 'fp8 vs exact' "$OUT/native-tests.log"

t=$(date +%s)
echo "== diff 1.3B exact vs fp8" >> "$OUT/fp8.err"
timeout 200 node --import tsx tools/bench/engine-video-diff.ts "${S[@]}" --blocks 60 --b engine.attention=fp8 --json \
  > "$RUNS/diff-13b.json" 2>> "$OUT/fp8.err"
echo "diff 1.3B rc=$? $(( $(date +%s) - t )) s"

REF=${DEMO_REF:-tmp/fp8-ref/demo-cpu-fp32.frames}
for attention in exact fp8; do
  t=$(date +%s)
  echo "== demo $attention vs CPU float32" >> "$OUT/fp8.err"
  timeout 120 node --import tsx tools/bench/engine-video-diff.ts --against "$REF" --b engine.name=native --b engine.dtype=float16 \
    --b engine.attention=$attention --json > "$RUNS/demo-$attention.json" 2>> "$OUT/fp8.err"
  echo "demo $attention rc=$? $(( $(date +%s) - t )) s"
done

for round in 1 2; do
  for variant in exact fp8 s3-exact s3-fp8; do
    extra=()
    [[ $variant == *fp8 ]] && extra+=(--set engine.attention=fp8)
    [[ $variant == s3-* ]] && extra+=(--set cache.sparse.stride=3)
    t=$(date +%s)
    echo "== bench $variant round $round" >> "$OUT/fp8.err"
    timeout 90 node ${SINKSTREAM_CLI:-bin/sinkstream.js} bench "${S[@]}" "${extra[@]}" --blocks 16 --json \
      > "$RUNS/bench-$variant-$round.json" 2>> "$OUT/fp8.err"
    echo "bench $variant round $round rc=$? $(( $(date +%s) - t )) s"
  done
done
RUNS=$RUNS node -e '
const fs = require("fs"); const dir = process.env.RUNS; const lines = [];
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const text = fs.readFileSync(dir + "/" + f, "utf8").trim().split("\n").pop();
  try { const j = JSON.parse(text);
    if (f.startsWith("bench")) lines.push(`${f}: msPerBlock ${j.msPerBlock} late ${j.lateMsPerBlock ?? "-"} engine ${j.engineMsPerBlock ?? "-"} videoFps ${j.videoFps} attention ${j.ranOn?.attention ?? j.attention ?? "-"}`);
    else lines.push(`${f}: latent ${JSON.stringify(j.latent)} overall ${JSON.stringify(j.overall)} generated ${JSON.stringify(j.generated)} seconds a ${j.a?.seconds} b ${j.b?.seconds}`);
  } catch (e) { lines.push(`${f}: unreadable (${e.message})`); }
}
console.log(lines.join("\n"));' | tee "$OUT/fp8-summary.txt"
tar -czf "$OUT/fp8-runs.tar.gz" -C "$RUNS" .
