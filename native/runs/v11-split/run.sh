#!/usr/bin/env bash
# GPU run for issue 18 item 4: keys split in runs so one attention call fills the H200 at 4680 queries
# (native/src/key-split.h; SSN_ATTENTION_SPLIT=1 turns it off, the default auto splits in 2 below four waves of tiles).
#   bash scripts/pack-device.sh --native, carry [".device"], then on the GPU:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v11-split/run.sh
# 1. the native suite (test/engine/native.test.ts: split against whole, bf16 and fp8)
# 2. attention alone, whole against split (python3 tools/bench/native-vs-torch.py attention; variants 9-11 are cuDNN's)
# 3. speed through the CLI: `sinkstream bench` (1.3B shape, synthetic weights, float16, sink W 21 / S 3, DiT only,
#    16 blocks), whole and split in alternating processes: exact and fp8 (two rounds), window 12 exact, sparse stride 3 + fp8
# Results under $OUT: split-summary.txt, split.err, split-runs.tar.gz, native-tests.log, attention-{whole,split}.log
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
RUNS=$(mktemp -d)
command -v node > /dev/null || source .device/boot.sh > /dev/null 2>&1
CLI=${SINKSTREAM_CLI:---import tsx src/cli/run.ts}
S=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink
   --set cache.window=21 --set cache.sink=3 --set decoder.kind=none)
: > "$OUT/split.err"
t=$(date +%s)
timeout 240 node scripts/run-tests.mjs engine/native.test > "$OUT/native-tests.log" 2>&1
echo "native suite rc=$? $(( $(date +%s) - t )) s; $(tail -1 "$OUT/native-tests.log")"
grep -h 'split vs whole\|fp8 vs exact' "$OUT/native-tests.log"

for split in 1 auto; do
  name=$([[ $split == 1 ]] && echo whole || echo split)
  SSN_ATTENTION_SPLIT=$split timeout 120 python3 tools/bench/native-vs-torch.py attention > "$OUT/attention-$name.log" 2>&1
  echo "attention $name rc=$?"
done

bench() {  # name, split, extra args...
  local name=$1 split=$2; shift 2
  local t=$(date +%s)
  echo "== bench $name" >> "$OUT/split.err"
  SSN_ATTENTION_SPLIT=$split timeout 90 node $CLI bench "${S[@]}" "$@" --blocks 16 --json > "$RUNS/bench-$name.json" 2>> "$OUT/split.err"
  echo "bench $name rc=$? $(( $(date +%s) - t )) s"
}
for round in 1 2; do
  for split in 1 auto; do
    tag=$([[ $split == 1 ]] && echo whole || echo split)
    bench "exact-$tag-$round" $split
    bench "fp8-$tag-$round" $split --set engine.attention=fp8
  done
done
for split in 1 auto; do
  tag=$([[ $split == 1 ]] && echo whole || echo split)
  bench "w12-exact-$tag" $split --set cache.window=12
  bench "s3-fp8-$tag" $split --set cache.sparse.stride=3 --set engine.attention=fp8
done
node native/runs/bench-summary.mjs "$RUNS" | tee "$OUT/split-summary.txt"
tar -czf "$OUT/split-runs.tar.gz" -C "$RUNS" .
