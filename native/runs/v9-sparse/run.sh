#!/usr/bin/env bash
# GPU run for issue 18 item 4 (sparse attention over the cache, cache.sparse): one H200, about 3 minutes; run after
# native/runs/v8-batch/run.sh in the same call (that one builds the addon).
# 1.3B shape (configs/wan-1.3b.yaml, synthetic weights, float16, sink policy, window 21, sink 3, DiT only):
#   quality: tools/bench/engine-video-diff.ts, 60 blocks, dense (A) against cache.sparse.stride=3 (B), then stride 4:
#     per-block latent relative error of the sparse rollout against the dense one (same seed, same prompt)
#   speed: `sinkstream bench`, 16 blocks, dense / stride 3 / stride 4 in alternating processes, two rounds
#   source .device/boot.sh && bash native/runs/v9-sparse/run.sh      (carry .device and dist; npm run build first)
# DIFF_STRIDES / BENCH_STRIDES (default "3 4" / "1 3 4") choose the strides when time is short.
# Results under $OUT (three files: a device call brings back at most eight): sparse-runs.tar.gz (sparse-diff-s<S>.json,
# sparse-bench-s<S>-<round>.json), sparse.err, sparse-summary.txt
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink
   --set cache.window=21 --set cache.sink=3 --set decoder.kind=none)
: > "$OUT/sparse.err"
for stride in ${DIFF_STRIDES:-3 4}; do
  t=$(date +%s)
  echo "== diff stride $stride" >> "$OUT/sparse.err"
  timeout 150 node --import tsx tools/bench/engine-video-diff.ts "${S[@]}" --blocks 60 --b cache.sparse.stride=$stride --json \
    > "$RUNS/sparse-diff-s$stride.json" 2>> "$OUT/sparse.err"
  echo "diff stride $stride rc=$? $(( $(date +%s) - t )) s"
done
for round in 1 2; do
  for stride in ${BENCH_STRIDES:-1 3 4}; do
    t=$(date +%s)
    echo "== bench stride $stride round $round" >> "$OUT/sparse.err"
    timeout 60 node bin/sinkstream.js bench "${S[@]}" --set cache.sparse.stride=$stride --blocks 16 --json \
      > "$RUNS/sparse-bench-s$stride-$round.json" 2>> "$OUT/sparse.err"
    echo "bench stride $stride round $round rc=$? $(( $(date +%s) - t )) s"
  done
done
RUNS=$RUNS node -e '
const fs = require("fs"); const out = process.env.RUNS; const lines = [];
for (const f of fs.readdirSync(out).filter((f) => /^sparse-(bench|diff)-.*\.json$/.test(f)).sort()) {
  const text = fs.readFileSync(out + "/" + f, "utf8").trim().split("\n").pop();
  try { const j = JSON.parse(text);
    if (f.includes("bench")) lines.push(`${f}: msPerBlock ${j.msPerBlock} late ${j.lateMsPerBlock ?? "-"} engine ${j.engineMsPerBlock ?? "-"} videoFps ${j.videoFps}`);
    else lines.push(`${f}: latent ${JSON.stringify(j.latent)} seconds a ${j.a.seconds} b ${j.b.seconds}`);
  } catch (e) { lines.push(`${f}: unreadable (${e.message})`); }
}
console.log(lines.join("\n"));' | tee "$OUT/sparse-summary.txt"
tar -czf "$OUT/sparse-runs.tar.gz" -C "$RUNS" .
