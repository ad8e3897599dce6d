set -u
CLI="--import tsx src/cli/run.ts"
W=(--config configs/wan-1.3b.yaml --set engine.name=native --set engine.dtype=float16 --set cache.policy=sink --set cache.sink=3 --set decoder.kind=none)
run() { local name=$1 lim=$2; shift 2; local t=$(date +%s); timeout $lim node $CLI bench --json "$@" > $OUT/$name.json 2> $OUT/$name.err; echo "$name rc=$? $(( $(date +%s) - t )) s"; tail -2 $OUT/$name.err; }
run w12-fp8-batch4 90 "${W[@]}" --set cache.window=12 --set engine.attention=fp8 --set engine.maxBatch=4 --streams 1,4 --also-turns --blocks 5
run demo-fp8-batch4 40 --set engine.name=native --set engine.dtype=float16 --set engine.attention=fp8 --set engine.maxBatch=4 --streams 1,4 --also-turns --blocks 8
run pipe-fp8 60 "${W[@]}" --set cache.window=21 --set engine.attention=fp8 --set engine.stages=2 --set 'engine.devices=[0,0]' --blocks 8
for s in 1 auto; do SSN_ATTENTION_SPLIT=$s run w12-fp8-split$s 60 "${W[@]}" --set cache.window=12 --set engine.attention=fp8 --blocks 16; done
node -e '
const fs=require("fs");for(const f of fs.readdirSync(process.env.OUT).filter(f=>f.endsWith(".json"))){const t=fs.readFileSync(process.env.OUT+"/"+f,"utf8").trim().split("\n").pop();try{const j=JSON.parse(t);console.log(f,"msPerBlock",j.msPerBlock,"attention",j.attention,"streams",JSON.stringify(j.streams??j.batch??"").slice(0,600))}catch(e){console.log(f,"unreadable",t.slice(0,200))}}'
