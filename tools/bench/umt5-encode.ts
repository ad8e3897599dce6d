/**
 * ms per prompt of the umT5 encoder graph on ONNX Runtime (the runtime's own path: embedding rows
 * looked up in JS, the graph run on the prompt's tokens), at several prompt lengths, and the
 * contexts it computed (for tools/bench/umt5_torch.py to compare against PyTorch).
 *
 *   node --import tsx tools/bench/umt5-encode.ts [--weights synthetic|FILE] [--layers 24] [--vocab 256384]
 *        [--provider cpu|webgpu] [--threads 0] [--lengths 16,64,128,256,512] [--reps 5] [--out DIR]
 *
 * Shape: umT5-XXL (dim 4096, 64 heads, ffn 10240) with --layers / --vocab overriding (a reduced
 * layer count where memory is short: the time is linear in layers). Weights: `synthetic` (seeded,
 * src/text/umt5-weights.ts) or a checkpoint (e.g. the file umt5_torch.py make-weights writes, or
 * Wan's models_t5_umt5-xxl-enc-bf16.pth). Token ids are fixed pseudo-random ids (the cost depends
 * on the length only). Time = wall clock of Umt5Runtime.run (context back on the host): median of
 * --reps after one warm-up. With --out: ids.json, ort-<L>.f32 (float32 [L, 4096]), timings.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { Umt5Runtime } from '../../src/text/umt5-runtime.js';
import { Umt5Tokenizer } from '../../src/text/umt5-tokenizer.js';
import { loadUmt5Weights, UMT5_XXL } from '../../src/text/umt5-weights.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const arch = { ...UMT5_XXL, layers: Number(arg('layers', String(UMT5_XXL.layers))), vocab: Number(arg('vocab', String(UMT5_XXL.vocab))) };
const provider = arg('provider', 'cpu') as 'cpu' | 'webgpu';
const threads = Number(arg('threads', '0'));
const lengths = arg('lengths', '16,64,128,256,512').split(',').map(Number);
const reps = Number(arg('reps', '5'));
const out = process.argv.includes('--out') ? arg('out', '') : null;
const weightsSource = arg('weights', 'synthetic');

const root = path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url))));
// Any tokenizer with at most `vocab` pieces satisfies the runtime; ids are given directly here.
const tokenizer = await Umt5Tokenizer.open(path.join(root, 'test', 'text', 'fixtures', 'umt5-tiny-bytefallback.model'));

const t0 = performance.now();
const weights = await loadUmt5Weights(weightsSource, arch, 0);
const t1 = performance.now();
const runtime = await Umt5Runtime.create({ arch, weights, tokenizer, textLen: 512, provider, threads });
const t2 = performance.now();
console.log(`umT5 encoder: ${arch.layers} layers, dim ${arch.dim}, ${provider}${provider === 'cpu' ? `, threads ${threads || 'default'}` : ''} on ${os.cpus().length} cores`);
console.log(`weights ${weightsSource}: loaded in ${((t1 - t0) / 1000).toFixed(1)} s; session built in ${((t2 - t1) / 1000).toFixed(1)} s; rss ${(process.memoryUsage().rss / 2 ** 30).toFixed(1)} GiB`);

const idsOf = (n: number): number[] => Array.from({ length: n }, (_, i) => (i === n - 1 ? 1 : (i * 7919 + 13) % arch.vocab));
const timings: Record<string, number[]> = {};
const ids: Record<string, number[]> = {};
if (out) mkdirSync(out, { recursive: true });
for (const n of lengths) {
  ids[n] = idsOf(n);
  let context = await runtime.run(ids[n]); // warm-up
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const s = performance.now();
    context = await runtime.run(ids[n]);
    times.push(performance.now() - s);
  }
  timings[n] = times;
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`L=${String(n).padStart(3)}: median ${sorted[sorted.length >> 1].toFixed(1)} ms  (min ${sorted[0].toFixed(1)}, max ${sorted[sorted.length - 1].toFixed(1)}, ${reps} reps)`);
  if (out) writeFileSync(path.join(out, `ort-${n}.f32`), new Uint8Array(context.buffer, context.byteOffset, context.byteLength));
}
if (out) {
  writeFileSync(path.join(out, 'ids.json'), JSON.stringify(ids));
  writeFileSync(path.join(out, 'timings.json'), JSON.stringify({ arch, provider, threads, weights: weightsSource, timings }, null, 1));
}
await runtime.close();
