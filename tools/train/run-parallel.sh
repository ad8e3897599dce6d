#!/usr/bin/env bash
# Runs several training commands at once on one GPU and gathers what they wrote, two files a run (a
# device call brings back at most 8). Measured on an H200 (docs/demo-model.md, 2026-12-04): three demo
# teachers side by side ran 2.9, 1.8 and 2.6 steps/s, together what one alone runs (8.8), so it buys
# no training speed for those runs; what it is for is comparing variants at equal wall time
# in one call, and gathering a run's outputs within the file limit.
#
#   OUT=<results folder> bash tools/train/run-parallel.sh NAME 'COMMAND' [NAME 'COMMAND' ...]
#
# Each COMMAND runs in the repository root with RUN_OUT set to its own folder (pass `--out $RUN_OUT`,
# single-quoted so that it expands there) and PYTHONUNBUFFERED=1; its output goes to $OUT/NAME.log while
# it runs (so a call cut off mid-run still brings it back). When all have ended: $OUT/NAME.safetensors
# (the run's model.safetensors, if it wrote one) and $OUT/NAME.tar.gz (everything else the run wrote:
# metrics, loss curve, PNGs, model.json, and its output as run-parallel.log, whose last TAIL_LINES lines,
# default 12, are also printed), which keeps a run to two files (a device call brings back at most 8:
# three runs and parallel.txt fit). Exit status: the number of runs that failed.
set -u
: "${OUT:?OUT must name the results folder}"
(( $# > 0 && $# % 2 == 0 )) || { echo "usage: OUT=dir $0 NAME 'COMMAND' [NAME 'COMMAND' ...]" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
work=$(mktemp -d)
names=() pids=()
while (( $# > 0 )); do
  name=$1 command=$2
  shift 2
  mkdir -p "$work/$name"
  echo "$(date -u +%T) start $name: $command" | tee -a "$OUT/parallel.txt"
  RUN_OUT="$work/$name" PYTHONUNBUFFERED=1 bash -c "$command" > "$OUT/$name.log" 2>&1 &
  names+=("$name") pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  name=${names[$i]}
  wait "${pids[$i]}"
  rc=$?
  (( rc == 0 )) || failed=$((failed + 1))
  echo "$(date -u +%T) end $name: rc=$rc" | tee -a "$OUT/parallel.txt"
  [[ -f $work/$name/model.safetensors ]] && mv "$work/$name/model.safetensors" "$OUT/$name.safetensors"
  tail -n "${TAIL_LINES:-12}" "$OUT/$name.log" | awk -v name="$name" '{ print name ": " $0 }'
  mv "$OUT/$name.log" "$work/$name/run-parallel.log"
  tar czf "$OUT/$name.tar.gz" -C "$work/$name" .
done
exit "$failed"
