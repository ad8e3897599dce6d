// One line per bench JSON of run.sh: the block, the addon's per-forward timing, Node vs C, the second stream.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const f = (x, d = 1) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');
for (const file of fs.readdirSync(dir).filter((n) => /^bench-.*\.json$/.test(n)).sort()) {
  let r;
  try {
    r = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8').trim().split('\n').pop());
  } catch {
    console.log(`${file}: no report (see the .err file)`);
    continue;
  }
  const t = r.engineTimings ?? {};
  const c = r.nodeVsC ?? {};
  const s = r.secondStream;
  console.log(
    `${file.replace(/^bench-|\.json$/g, '')}: ${r.attention}; block ${f(r.msPerBlock)} ms (late ${f(r.lateMsPerBlock)}, first ${f(r.firstBlockMs)}), ` +
      `engine ${f(r.engineMsPerBlock)}, split fw ${f(r.pipeline?.split?.forwardsMs)} cache ${f(r.pipeline?.split?.cacheMs)} host ${f(r.pipeline?.split?.hostMs)}`,
  );
  console.log(
    `  per forward: js ${f(t.jsMsPerForward, 2)} = addon ${f(t.wallMsPerForward, 2)} (gpu ${f(t.gpuMsPerForward, 2)}, issue ${f(t.issueMsPerForward, 2)}) + hop ${f(t.hopMsPerForward, 2)}; ` +
      `idle before ${f(t.idleMsPerForward, 2)}; graphs ${t.cudaGraphs ? `on ${t.graphLaunches}/${t.forwards} launched, ${t.graphCaptures} captured${t.graphFallback ? ', FELL BACK' : ''}` : 'off'}`,
  );
  console.log(
    `  node vs C at ${c.cacheRows} rows: forwards ${f(c.nodeForwardsMs)} vs ${f(c.cForwardsMs)} (${f(c.forwardsRatio, 3)}x), engine ${f(c.nodeEngineMs)} vs ${f((c.cForwardsMs ?? NaN) + (c.cUpdateMs ?? NaN))} (${f(c.engineRatio, 3)}x), ` +
      `block ${f(c.nodeBlockMs)} vs ${f(c.cBlockMs)} (${f(c.blockRatio, 3)}x)`,
  );
  if (s) {
    console.log(
      `  second stream: first ${f(s.firstBlockMs)} vs steady ${f(s.steadyMsPerBlock)} ms (${f(100 * s.firstVsSteady)} %), engine ${f(s.engineMs, 0)} ms, warm-up ${f(s.warmupMs, 0)} ms, plans built ${s.attentionPlansBuilt} reused ${s.attentionPlansReused}`,
    );
  }
}
