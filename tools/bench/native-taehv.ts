/**
 * The native TAEHV decoder through Node (createDecoder, as render and serve open it) at the real shape with
 * synthetic weights: open time (weights, plans, warm-up), then frames and wall milliseconds per block.
 *
 *   node --import tsx tools/bench/native-taehv.ts [--blocks 20] [--dtype float16|float32] [--latent 60x104]
 */
import { parseArgs } from 'node:util';
import { configSchema } from '../../src/config/schema.js';
import { createDecoder } from '../../src/decode/decoder.js';
import { NativeTaehvDecoder } from '../../src/decode/native-taehv.js';

const { values } = parseArgs({
  options: { blocks: { type: 'string', default: '20' }, dtype: { type: 'string', default: 'float16' }, latent: { type: 'string', default: '60x104' } },
});
const [latentHeight, latentWidth] = values.latent.split('x').map(Number);
const blocks = Number(values.blocks);
const config = configSchema.parse({
  model: { arch: { latentChannels: 16 }, latentHeight, latentWidth },
  decoder: { kind: 'taehv', dtype: values.dtype, runtime: 'native' },
  engine: { name: 'native' },
  generation: { blockFrames: 3 },
});

const t0 = performance.now();
const decoder = await createDecoder(config);
const openMs = performance.now() - t0;
if (!(decoder instanceof NativeTaehvDecoder)) throw new Error('expected the native TAEHV decoder');
const info = decoder.info();
console.log(`${info.provider}`);
console.log(`open ${openMs.toFixed(0)} ms (weights, ${info.plans} plans in ${info.planMs.toFixed(0)} ms, warm-up block); frames ${decoder.width}x${decoder.height}`);

const plane = 16 * 3 * latentHeight * latentWidth;
const ms: number[] = [];
const device: number[] = [];
for (let b = 0; b < blocks; b++) {
  const latent = Float32Array.from({ length: plane }, (_, i) => Math.sin(i * 0.37 + b) * 1.5);
  const s = performance.now();
  const frames = await decoder.decode(latent);
  ms.push(performance.now() - s);
  device.push(decoder.info().lastMs);
  if (frames.length !== (b === 0 ? 9 : 12) || frames.some((f) => f.length !== decoder.width * decoder.height * 3)) {
    throw new Error(`block ${b}: ${frames.length} frames`);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`first block ${ms[0].toFixed(2)} ms (device ${device[0].toFixed(2)}); blocks 2-${blocks}: median ${median(ms.slice(1)).toFixed(2)} ms wall, ${median(device.slice(1)).toFixed(2)} ms device (12 frames each: ${(12000 / median(ms.slice(1))).toFixed(0)} frames/s)`);
await decoder.close();
