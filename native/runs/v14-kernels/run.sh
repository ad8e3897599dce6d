#!/usr/bin/env bash
# Per-kernel time and DRAM bytes of one native forward at the 1.3B shape (21 frames of keys), Nsight Compute over
# tools/bench/native-kernels.py: bf16, and fp8 products + FP8 attention. On one H200:
#   source .device/boot.sh && bash scripts/build-native.sh && bash native/runs/v14-kernels/run.sh
# Results under $OUT: kernels-<variant>.csv (ncu's raw page) and kernels-<variant>.txt (per-kernel summary).
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
for v in "bf16:" "fp8:--fp8-products --fp8-attention"; do
  name=${v%%:*}; flags=${v#*:}
  t=$(date +%s)
  timeout 240 "$NCU" --profile-from-start off --clock-control none --csv --page raw \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
    python3 tools/bench/native-kernels.py $flags > "$OUT/kernels-$name.csv" 2> "$OUT/kernels-$name.err"
  echo "$name rc=$? $(( $(date +%s) - t )) s"
  python3 tools/bench/native-kernels.py --summarise "$OUT/kernels-$name.csv" | tee "$OUT/kernels-$name.txt" | head -25
done
