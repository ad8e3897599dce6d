/**
 * The Wan2.1 VAE decoder on ONNX Runtime: synthetic weights for the PyTorch reference, and the
 * timing / parity run that tools/bench/wan-vae-bench.py compares against PyTorch.
 *
 *   node --import tsx tools/bench/wan-vae-ort.ts weights --out W.safetensors [--dim 96] [--seed 0]
 *       the decoder's synthetic weights (src/decode/wan-vae/weights.ts) as a safetensors file
 *   node --import tsx tools/bench/wan-vae-ort.ts run --dir D [--provider webgpu|cpu] [--dtype float16|float32]
 *        [--dim 96] [--height 60] [--width 104] [--block 3] [--reps 3] [--frames-per-run 1] [--seed 0]
 *       (--block 0: the first latent frame alone)
 *       writes D/weights.safetensors and D/latent.safetensors (one first latent frame + one block),
 *       decodes the stream (first frame, then the block) --reps times, prints ms per first frame and
 *       per block (wall clock, frames back on the host: median after one warm-up stream) and writes
 *       the last stream's float frames to D/ort-<provider>-<dtype>.safetensors ([frames, 3, H, W]).
 * Default shape: 832x480 video (60x104 latents), the published architecture (dim 96).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { WAN21_VAE_ARCH } from '../../src/decode/wan-vae/arch.js';
import { WanVaeDecoder } from '../../src/decode/wan-vae/wan-vae-decoder.js';
import { syntheticWanVaeWeights } from '../../src/decode/wan-vae/weights.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { fillNormal } from '../../src/model/synthetic.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function writeWeights(): Promise<void> {
  const out = arg('out', '');
  if (!out) throw new Error('weights: --out FILE is required');
  const arch = { ...WAN21_VAE_ARCH, dim: Number(arg('dim', '96')) };
  const seed = Number(arg('seed', '0'));
  await writeSafetensors(out, syntheticWanVaeWeights(arch, seed), { metadata: { dim: String(arch.dim), seed: String(seed) } });
  console.log(`[wan-vae] ${out}: synthetic decoder weights, dim ${arch.dim}, seed ${seed}`);
}

async function run(): Promise<void> {
  const dir = arg('dir', '');
  if (!dir) throw new Error('run: --dir DIR is required');
  mkdirSync(dir, { recursive: true });
  const provider = arg('provider', 'webgpu') as 'webgpu' | 'cpu';
  const dtype = arg('dtype', 'float16') as 'float16' | 'float32';
  const arch = { ...WAN21_VAE_ARCH, dim: Number(arg('dim', '96')) };
  const seed = Number(arg('seed', '0'));
  const h = Number(arg('height', '60'));
  const w = Number(arg('width', '104'));
  const block = Number(arg('block', '3'));
  const reps = Number(arg('reps', '3'));
  const framesPerRun = Number(arg('frames-per-run', '1'));
  const C = arch.zDim;

  const weights = syntheticWanVaeWeights(arch, seed);
  await writeSafetensors(path.join(dir, 'weights.safetensors'), weights, { metadata: { dim: String(arch.dim), seed: String(seed) } });
  const F = 1 + block;
  const latent = new Float32Array(C * F * h * w);
  fillNormal(latent, 0x5eed ^ seed, 0, 1);
  await writeSafetensors(path.join(dir, 'latent.safetensors'), new Map([['latent', { shape: [C, F, h, w], data: latent }]]));
  const firstLatent = new Float32Array(C * h * w);
  const blockLatent = new Float32Array(C * block * h * w);
  for (let c = 0; c < C; c++) {
    firstLatent.set(latent.subarray(c * F * h * w, (c * F + 1) * h * w), c * h * w);
    blockLatent.set(latent.subarray((c * F + 1) * h * w, (c * F + F) * h * w), c * block * h * w);
  }

  let t = performance.now();
  const decoder = await WanVaeDecoder.fromWeights(arch, weights, {
    weights: 'synthetic',
    latentChannels: C,
    latentHeight: h,
    latentWidth: w,
    provider,
    dtype,
    framesPerRun,
  });
  const openMs = performance.now() - t;
  const firstMs: number[] = [];
  const blockMs: number[] = [];
  let frames: { data: Float32Array; frames: number }[] = [];
  for (let r = 0; r < reps + 1; r++) {
    await decoder.reset();
    t = performance.now();
    const a = await decoder.decodeFloat(firstLatent);
    const t1 = performance.now();
    const b = block > 0 ? await decoder.decodeFloat(blockLatent) : { data: new Float32Array(0), frames: 0 };
    const t2 = performance.now();
    if (r > 0) {
      firstMs.push(t1 - t);
      blockMs.push(t2 - t1);
    }
    frames = [a, b];
  }
  await decoder.close();
  const total = frames.reduce((n, f) => n + f.frames, 0);
  const data = new Float32Array(frames.reduce((n, f) => n + f.data.length, 0));
  data.set(frames[0].data, 0);
  data.set(frames[1].data, frames[0].data.length);
  const outFile = path.join(dir, `ort-${provider}-${decoder.dtype}.safetensors`);
  await writeSafetensors(outFile, new Map([['frames', { shape: [total, 3, decoder.height, decoder.width], data }]]));
  const result = {
    provider,
    dtype: decoder.dtype,
    video: `${decoder.width}x${decoder.height}`,
    dim: arch.dim,
    blockLatentFrames: block,
    framesPerRun,
    openMs: Math.round(openMs),
    firstFrameMs: Math.round(median(firstMs)),
    blockMs: Math.round(median(blockMs)),
    blockMsAll: blockMs.map(Math.round),
    msPerLatentFrame: block > 0 ? Math.round(median(blockMs) / block) : null,
    videoFramesPerBlock: frames[1].frames,
    output: outFile,
  };
  console.log(JSON.stringify(result));
}

const command = process.argv[2];
if (command === 'weights') await writeWeights();
else if (command === 'run') await run();
else {
  console.error('usage: wan-vae-ort.ts weights --out FILE [--dim 96] [--seed 0] | run --dir DIR [...] (see the header)');
  process.exit(2);
}
