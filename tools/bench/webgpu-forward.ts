/**
 * Forward-pass latency of one block through the ORT engine's runtime, at several numbers of key
 * frames. K/V stay on the GPU between calls (engine.residentCache, the engine's default);
 * --host-cache sends them through the host on every call instead, for comparison.
 *
 *   node --import tsx tools/bench/webgpu-forward.ts [--provider webgpu|cpu] [--dtype float16|float32]
 *        [--keys 3,12,21] [--reps 5] [--layers N] [--small] [--host-cache]
 *
 * Default shape: Wan2.1-T2V-1.3B (docs/model.md) with synthetic weights, 832x480 (60x104 latents,
 * 1560 tokens per frame), 3-frame blocks (4680 tokens). "K frames of keys" counts the block's own
 * 3 frames, as the 1.3B reference figures are usually quoted: the cache holds K-3 frames ((K-3)*1560 rows),
 * built on the device by gathering a clean pass's rows (no host round trip).
 * Times are wall-clock per runtime.forward (the flow comes back to the host, so the GPU has
 * finished): median of --reps after one warm-up.
 */
import { configSchema } from '../../src/config/schema.js';
import { OrtRuntime } from '../../src/engine/ort/ort-runtime.js';
import { modelDims } from '../../src/model/dims.js';
import { syntheticWeights } from '../../src/model/synthetic.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const small = process.argv.includes('--small');
const provider = arg('provider', 'webgpu') as 'webgpu' | 'cpu';
const dtype = arg('dtype', 'float16') as 'float16' | 'float32';
const keyFrames = arg('keys', '3,12,21').split(',').map(Number).sort((a, b) => a - b);
const reps = Number(arg('reps', '5'));

const config = configSchema.parse({
  model: small
    ? { arch: { dim: 64, layers: 2, heads: 2, ffnDim: 128, latentChannels: 16, textDim: 32, textLen: 8 }, latentHeight: 8, latentWidth: 8 }
    : {
        arch: { dim: 1536, layers: Number(arg('layers', '30')), heads: 12, ffnDim: 8960, freqDim: 256, latentChannels: 16, patch: [1, 2, 2], textDim: 4096, textLen: 512 },
        latentHeight: 60,
        latentWidth: 104,
      },
  engine: { name: 'ort', provider, dtype },
});
const dims = modelDims(config);
const T = dims.tokensPerFrame;
const F = 3;
const log = (s: string): void => console.log(`[${(performance.now() / 1000).toFixed(1)}s] ${s}`);
log(`shape: dim ${dims.dim}, layers ${dims.layers}, ${T} tokens/frame, block ${F * T} tokens; provider ${provider}, ${dtype}`);

let t0 = performance.now();
const weights = syntheticWeights(dims, 0);
let params = 0;
for (const w of weights.values()) params += w.data.length;
log(`synthetic weights: ${(params / 1e9).toFixed(3)} B params in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

t0 = performance.now();
const resident = !process.argv.includes('--host-cache');
const runtime = await OrtRuntime.create({ dims, weights, provider, threads: 0, dtype, resident });
weights.clear();
log(`sessions created in ${((performance.now() - t0) / 1000).toFixed(1)} s (compute type ${runtime.dtype}, K/V ${resident ? 'resident on the device' : 'through the host'})`);

const wave = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233));
await runtime.setPrompt(wave(dims.textLen * dims.textDim, 1));
log('prompt set');
const latent = wave(dims.latentChannels * F * dims.latentHeight * dims.latentWidth, 2);
const forward = (positions: number[], keepBlockKv: boolean, t = 500) =>
  runtime.forward({ latent, timesteps: new Float32Array(F).fill(t), framePositions: Int32Array.from(positions), keepBlockKv, keepQueries: 'none' });

t0 = performance.now();
const clean = await forward([0, 1, 2], true, 0);
log(`clean pass (first run, includes shader compilation): ${(performance.now() - t0).toFixed(0)} ms; flow finite: ${clean.flow.every(Number.isFinite)}`);

const results: Array<{ keys: number; cacheRows: number; median: number; min: number; max: number }> = [];
for (const K of keyFrames) {
  const cacheFrames = K - F;
  const rows = cacheFrames * T;
  const available = runtime.info().cacheRows + runtime.info().pendingRows;
  const positions = new Float32Array(rows * 3);
  for (let r = 0; r < rows; r++) positions.set([Math.floor(r / T), Math.floor((r % T) / dims.gridWidth), (r % T) % dims.gridWidth], r * 3);
  // cache settings run in increasing order: each gathers from the rows already there (the first
  // from the clean pass's pending rows); 0 rows needs no update and keeps the pending rows
  if (rows > 0) await runtime.updateCache({
    rows,
    terms: 1,
    perLayer: false,
    sources: Int32Array.from({ length: rows }, (_, r) => r % available),
    weights: new Float32Array(rows).fill(1),
    positions,
  });
  const at = [cacheFrames, cacheFrames + 1, cacheFrames + 2];
  t0 = performance.now();
  const warm = await forward(at, false);
  const warmMs = performance.now() - t0;
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    t0 = performance.now();
    await forward(at, false);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  results.push({ keys: K, cacheRows: rows, median, min: times[0], max: times[times.length - 1] });
  log(`${K} frames of keys (${rows} cached rows + ${F * T} block): warm-up ${warmMs.toFixed(0)} ms, median ${median.toFixed(1)} ms over ${reps} [${times.map((t) => t.toFixed(0)).join(', ')}]; finite: ${warm.flow.every(Number.isFinite)}`);
}
await runtime.close();

console.log(`\nforward of one ${F}-frame block (${F * T} tokens), ${provider} ${runtime.dtype}, median of ${reps}:`);
console.log('key frames | cached rows | median ms | min ms | max ms');
for (const r of results) console.log(`${String(r.keys).padStart(10)} | ${String(r.cacheRows).padStart(11)} | ${r.median.toFixed(1).padStart(9)} | ${r.min.toFixed(1).padStart(6)} | ${r.max.toFixed(1).padStart(6)}`);
