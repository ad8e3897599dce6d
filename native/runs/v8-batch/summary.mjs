// One line per run of each bench --streams JSON of run.sh: streams, batched or taking turns, frames/s of all, the
// per-stream block period, and batched against taking turns at the same count.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const f = (x, d = 1) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');
for (const file of fs.readdirSync(dir).filter((n) => /^streams-.*\.json$/.test(n)).sort()) {
  let r;
  try {
    r = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8').trim().split('\n').pop());
  } catch {
    console.log(`${file}: no report (see streams.err)`);
    continue;
  }
  console.log(`${file.replace(/^streams-|\.json$/g, '')}: ${r.engine}; cache ${r.cache}; ${r.latentFramesPerBlock} latent frames a block`);
  const turns = new Map(r.runs.filter((x) => !x.batched).map((x) => [x.streams, x]));
  for (const x of r.runs) {
    const t = x.batched ? turns.get(x.streams) : null;
    console.log(
      `  ${String(x.streams).padStart(2)} ${x.batched ? `batched (${f(x.forwardsPerCall, 2)}/call)` : 'turns             '}: ` +
        `${f(x.latentFps)} latent frames/s (${f(x.videoFps)} video) in all; block period ${f(x.msPerBlock)} ms a stream, first block ${f(x.firstBlockMs)} ms` +
        (t ? `; vs turns ${f(x.latentFps / t.latentFps, 2)}x frames/s, ${f(x.msPerBlock / t.msPerBlock, 2)}x period` : ''),
    );
  }
}
