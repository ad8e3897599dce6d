/**
 * Parameter counts and memory of the published real models, computed from the shapes the runtime
 * loads (nothing is downloaded or measured): the figures of docs/real-models.md.
 *
 *   npx tsx tools/real-model-sizes.ts [configs/self-forcing-1.3b.yaml ...]
 */
import { loadConfig } from '../src/config/load.js';
import { modelDims } from '../src/model/dims.js';
import { expectedShapes, shapeSize } from '../src/model/expected-shapes.js';
import { umt5Shapes, UMT5_XXL } from '../src/text/umt5-weights.js';
import { expectedShapes as taehvShapes } from '../src/decode/taehv/architecture.js';
import { decoderWeightShapes, WAN21_VAE_ARCH } from '../src/decode/wan-vae/arch.js';

const GB = 1e9;
const count = (shapes: Map<string, number[]>): number => [...shapes.values()].reduce((s, shape) => s + shapeSize(shape), 0);
const gb = (bytes: number): string => `${(bytes / GB).toFixed(2)} GB`;

const configs = process.argv.slice(2);
const files = configs.length > 0 ? configs : ['configs/self-forcing-1.3b.yaml', 'configs/longlive-1.3b.yaml', 'configs/reward-forcing-1.3b.yaml'];
const first = loadConfig({ file: files[0] });
const dims = modelDims(first);
const dit = count(expectedShapes(dims));
console.log(`Wan2.1-T2V-1.3B transformer: ${dit.toLocaleString('en')} parameters; fp32 ${gb(dit * 4)}, bf16 ${gb(dit * 2)}`);

// LongLive's LoRA: every Linear of every attention block (self/cross q, k, v, o; ffn.0, ffn.2), rank 256.
const rank = 256;
let lora = 0;
for (const [key, shape] of expectedShapes(dims)) {
  if (/^blocks\.\d+\.(self_attn|cross_attn|ffn)\.[^.]+\.weight$/.test(key) && shape.length === 2) lora += rank * (shape[0] + shape[1]);
}
console.log(`LongLive LoRA (rank ${rank}, ${dims.layers} blocks x 10 linears): ${lora.toLocaleString('en')} parameters; fp32 ${gb(lora * 4)}, bf16 ${gb(lora * 2)}`);

const t5 = count(umt5Shapes(UMT5_XXL));
console.log(`umT5-XXL encoder: ${t5.toLocaleString('en')} parameters; bf16 ${gb(t5 * 2)}, fp32 ${gb(t5 * 4)}`);
const taehv = count(taehvShapes({ latentChannels: 16, channels: [256, 128, 64, 64] }));
console.log(`TAEHV taew2_1 decoder: ${taehv.toLocaleString('en')} parameters; fp32 ${gb(taehv * 4)}`);
const vae = count(decoderWeightShapes(WAN21_VAE_ARCH));
console.log(`Wan2.1 VAE decoder half: ${vae.toLocaleString('en')} parameters; fp32 ${gb(vae * 4)}`);

for (const file of files) {
  const config = loadConfig({ file });
  const d = modelDims(config);
  const bytesPerValue = 2; // the GPU engines hold weights and the KV cache in bf16 / fp16
  const perFrame = d.layers * 2 * d.dim * d.tokensPerFrame * bytesPerValue;
  const cache = perFrame * config.cache.window;
  const textKv = d.layers * 2 * d.dim * d.textLen * bytesPerValue;
  const blockTokens = d.tokensPerFrame * config.generation.blockFrames;
  const ffnActivation = blockTokens * d.ffnDim * bytesPerValue;
  console.log(
    `${file}: KV cache ${config.cache.window} frames x ${(perFrame / 1e6).toFixed(1)} MB = ${gb(cache)}; text K/V ${gb(textKv)}; ` +
      `largest activation (FFN of a ${config.generation.blockFrames}-frame block, ${blockTokens} tokens) ${gb(ffnActivation)}; ` +
      `weights bf16 ${gb(dit * bytesPerValue)}; total ${gb(cache + textKv + dit * bytesPerValue + ffnActivation)}`,
  );
}
