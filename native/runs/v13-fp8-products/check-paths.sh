#!/usr/bin/env bash
# engine.dtype fp8 on the runtime's other paths (one H200): 4 streams batched against taking turns (W 12, FP8
# attention too), a two-stage pipeline on one GPU (each stage quantises its own layers' weights), and a second
# stream's first block on a warm process. `source .device/boot.sh && bash scripts/build-native.sh && bash <this>`
set -u
: "${OUT:?OUT must name the results folder}"
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
CLI="--import tsx src/cli/run.ts"
W=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=fp8 --set engine.attention=fp8 --set cache.policy=sink --set cache.sink=3 --set decoder.kind=none)
run() { local name=$1 lim=$2; shift 2; local t=$(date +%s); timeout $lim node $CLI bench --json "$@" > $OUT/$name.json 2> $OUT/$name.err; echo "$name rc=$? $(( $(date +%s) - t )) s"; tail -2 $OUT/$name.err; }
run w12-batch4 120 "${W[@]}" --set cache.window=12 --set engine.maxBatch=4 --streams 1,4 --also-turns --blocks 8
run pipe2 60 "${W[@]}" --set cache.window=21 --set engine.stages=2 --set 'engine.devices=[0,0]' --blocks 8
run second-stream 90 "${W[@]}" --set cache.window=21 --second-stream 8 --blocks 16
node -e '
const fs=require("fs");for(const f of fs.readdirSync(process.env.OUT).filter(f=>f.endsWith(".json"))){const t=fs.readFileSync(process.env.OUT+"/"+f,"utf8").trim().split("\n").pop();try{const j=JSON.parse(t);console.log(f,"msPerBlock",j.msPerBlock,"precision",j.ranOn?.enginePrecision,"firstBlock",JSON.stringify(j.secondStream??j.firstBlockMs??"").slice(0,300),"streams",JSON.stringify(j.streams??"").slice(0,900))}catch(e){console.log(f,"unreadable",t.slice(0,200))}}'
