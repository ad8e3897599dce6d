// One line per `sinkstream bench --json` file in a folder (the runs' summaries):
//   node native/runs/bench-summary.mjs DIR
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const lines = [];
for (const f of fs.readdirSync(dir).filter((name) => name.endsWith('.json')).sort()) {
  const text = fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').pop();
  try {
    const j = JSON.parse(text);
    lines.push(`${f}: msPerBlock ${j.msPerBlock} late ${j.lateMsPerBlock ?? '-'} engine ${j.engineMsPerBlock ?? '-'} videoFps ${j.videoFps} attention ${j.ranOn?.attention ?? j.attention ?? '-'}`);
  } catch (e) {
    lines.push(`${f}: unreadable (${e.message})`);
  }
}
console.log(lines.join('\n'));
