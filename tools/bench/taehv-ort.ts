/**
 * TAEHV on ONNX Runtime, block by block, timed: what `decoder.kind: taehv` costs per block on a provider.
 *
 *   node --import tsx tools/bench/taehv-ort.ts --provider cpu --blocks 3                   # real shape (60x104 latents -> 480x832)
 *   node --import tsx tools/bench/taehv-ort.ts --provider cpu --latent 8x8 --channels 16,8,8,8 --blocks 5
 *   node --import tsx tools/bench/taehv-ort.ts --provider webgpu --dtype float16 --weights W.safetensors \
 *        --latents L.safetensors --float-out F.safetensors --json                       # tools/bench/taehv-bench.py runs this
 *
 * Latents: a safetensors file's `latents` [C, T, H, W] (T = blocks x 3), or seeded ones. Timing runs the
 * production path (RGB24 bytes out of the graph); the first block (zero memory, 9 frames) is reported apart
 * from the later ones (12 frames). With --float-out, the first two blocks are decoded again with float frames
 * out, written as `frames` [N, 3, 8H, 8W] for a parity check against the PyTorch reference.
 */
import { Command } from 'commander';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors.js';
import { TaehvRuntime } from '../../src/decode/taehv/runtime.js';
import { loadTaehvWeights } from '../../src/decode/taehv/weights.js';
import type { TaehvShape } from '../../src/decode/taehv/architecture.js';
import { gaussianNoise } from '../../src/loop/noise.js';
import { median } from '../../src/util/stats.js';

interface Options {
  provider: 'cpu' | 'webgpu';
  dtype: 'float32' | 'float16';
  latent: string;
  channels: string;
  weights: string;
  latents?: string;
  blocks: string;
  blockFrames: string;
  threads: string;
  floatOut?: string;
  json?: boolean;
}

const options = new Command('taehv-ort')
  .option('--provider <p>', 'cpu | webgpu', 'cpu')
  .option('--dtype <t>', 'float32 | float16 (the CPU provider runs float32)', 'float32')
  .option('--latent <HxW>', 'latent frame size', '60x104')
  .option('--channels <c0,c1,c2,c3>', 'TAEHV channels', '256,128,64,64')
  .option('--weights <file|synthetic>', 'checkpoint or synthetic', 'synthetic')
  .option('--latents <file>', 'safetensors with `latents` [16, T, H, W]')
  .option('--blocks <n>', 'blocks to decode', '5')
  .option('--block-frames <n>', 'latent frames per block', '3')
  .option('--threads <n>', 'CPU threads (0 = all)', '0')
  .option('--float-out <file>', 'also write the first two blocks as float frames (parity)')
  .option('--json', 'print one JSON object')
  .parse()
  .opts<Options>();

const [H, W] = options.latent.split('x').map(Number);
const channels = options.channels.split(',').map(Number) as [number, number, number, number];
const blocks = Number(options.blocks);
const F = Number(options.blockFrames);
const C = 16;
const shape: TaehvShape = { latentChannels: C, channels, latentHeight: H, latentWidth: W };

async function latents(): Promise<Float32Array> {
  if (!options.latents) return gaussianNoise(C * blocks * F * H * W, 1234, 0, 0);
  const file = await SafetensorsFile.open(options.latents);
  try {
    const t = await file.read('latents');
    if (t.shape.join() !== [C, t.shape[1], H, W].join() || t.shape[1] < blocks * F) {
      throw new Error(`${options.latents}: latents [${t.shape}] do not hold ${blocks} blocks of [${C}, ${F}, ${H}, ${W}]`);
    }
    return t.data;
  } finally {
    await file.close();
  }
}

function blockOf(all: Float32Array, T: number, b: number): Float32Array {
  const plane = H * W;
  const out = new Float32Array(C * F * plane);
  for (let c = 0; c < C; c++) out.set(all.subarray((c * T + b * F) * plane, (c * T + (b + 1) * F) * plane), c * F * plane);
  return out;
}

const loadStart = performance.now();
const weights = await loadTaehvWeights(options.weights, shape, 0);
const all = await latents();
const T = all.length / (C * H * W);
const t0 = performance.now();
const runtime = await TaehvRuntime.create({ shape, weights, provider: options.provider, dtype: options.dtype, threads: Number(options.threads) });
const sessionMs = performance.now() - t0;
const ms: number[] = [];
const frames: number[] = [];
try {
  for (let b = 0; b < blocks; b++) {
    const s = performance.now();
    const out = await runtime.decode(blockOf(all, T, b));
    ms.push(performance.now() - s);
    frames.push(out.frames);
    if (!options.json) process.stderr.write(`block ${b}: ${out.frames} frames in ${ms[b].toFixed(1)} ms\n`);
  }
} finally {
  await runtime.close();
}

if (options.floatOut) {
  const parity = await TaehvRuntime.create({ shape, weights, provider: options.provider, dtype: options.dtype, threads: Number(options.threads), output: 'float' });
  try {
    const parts: Float32Array[] = [];
    for (let b = 0; b < Math.min(2, blocks); b++) parts.push((await parity.decode(blockOf(all, T, b))).data as Float32Array);
    const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
    const n = data.length / (3 * 64 * H * W);
    await writeSafetensors(options.floatOut, new Map([['frames', { shape: [n, 3, 8 * H, 8 * W], data }]]));
  } finally {
    await parity.close();
  }
}

const later = ms.slice(1);
const report = {
  provider: options.provider,
  dtype: runtime.dtype,
  latent: [H, W],
  frameSize: [8 * H, 8 * W],
  channels,
  blocks,
  framesPerBlock: frames,
  weightsAndLatentsMs: t0 - loadStart,
  sessionsMs: sessionMs,
  firstBlockMs: ms[0],
  msPerBlock: later.length ? median(later) : null,
  videoFramesPerSecond: later.length ? (frames[1] * 1000) / median(later) : null,
  allBlockMs: ms,
};
if (options.json) process.stdout.write(JSON.stringify(report) + '\n');
else {
  process.stdout.write(
    `TAEHV ${options.provider} ${runtime.dtype}, ${8 * W}x${8 * H} from ${W}x${H} latents, channels ${channels.join('/')}: ` +
      `sessions ${sessionMs.toFixed(0)} ms; first block ${ms[0].toFixed(1)} ms (${frames[0]} frames); ` +
      (later.length ? `later blocks median ${median(later).toFixed(1)} ms (${frames[1]} frames, ${((frames[1] * 1000) / median(later)).toFixed(1)} video frames/s)\n` : '\n'),
  );
}
