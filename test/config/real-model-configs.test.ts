/**
 * configs/self-forcing-1.3b.yaml, longlive-1.3b.yaml, reward-forcing-1.3b.yaml: each validates with the
 * published files' names and its paper's sampler, steps, shift and cache; at a small shape (synthetic
 * transformer, a narrow Wan VAE, LongLive's LoRA fixture) each generates blocks with its own settings.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { WAN21_VAE_ARCH } from '../../src/decode/wan-vae/arch.js';
import { syntheticWanVaeWeights } from '../../src/decode/wan-vae/weights.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { modelDims } from '../../src/model/dims.js';
import { expectedShapes, shapeSize } from '../../src/model/expected-shapes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const configFile = (name: string): string => path.join(root, 'configs', name);
const models = path.join(root, 'models');

test('self-forcing-1.3b: the EMA generator of self_forcing_dmd.pt, 4 re-noised steps, shift 5, a 21-frame rolling window', () => {
  const c = loadConfig({ file: configFile('self-forcing-1.3b.yaml') });
  assert.is(c.model.weights, path.join(models, 'self-forcing', 'self_forcing_dmd.pt'));
  assert.is(c.model.generatorKey, undefined);
  assert.is(c.model.arch.dim, 1536);
  assert.equal([c.model.latentHeight, c.model.latentWidth], [60, 104]);
  assert.equal(c.generation.steps, [1000, 750, 500, 250]);
  assert.equal([c.generation.sampler, c.generation.shift, c.generation.blockFrames], ['renoise', 5, 3]);
  assert.equal([c.cache.policy, c.cache.window], ['window', 21]);
  assert.is(c.text.encoder, 'umt5');
  assert.is(c.text.weights, path.join(models, 'Wan2.1-T2V-1.3B', 'models_t5_umt5-xxl-enc-bf16.pth'));
  assert.equal([c.decoder.kind, c.decoder.weights], ['wan-vae', path.join(models, 'Wan2.1-T2V-1.3B', 'Wan2.1_VAE.pth')]);
});

test('longlive-1.3b: the generator entry of longlive_base.pt plus lora.pt at scale 1, sink 3 in a 12-frame window', () => {
  const c = loadConfig({ file: configFile('longlive-1.3b.yaml') });
  assert.is(c.model.weights, path.join(models, 'longlive', 'longlive_base.pt'));
  assert.is(c.model.generatorKey, 'generator');
  assert.is(c.model.lora, path.join(models, 'longlive', 'lora.pt'));
  assert.equal([c.model.loraScale, c.model.loraAlpha], [1, undefined]);
  assert.equal(c.generation.steps, [1000, 750, 500, 250]);
  assert.equal([c.generation.sampler, c.generation.shift, c.generation.blockFrames], ['renoise', 5, 3]);
  assert.equal([c.cache.policy, c.cache.window, c.cache.sink, c.cache.positions], ['sink', 12, 3, 'absolute']);
  assert.is(c.text.encoder, 'umt5');
});

test('reward-forcing-1.3b: the bare state dict rewardforcing.pt, EMA-Sink of 3 slots (alpha 0.999) in a 9-frame window', () => {
  const c = loadConfig({ file: configFile('reward-forcing-1.3b.yaml') });
  assert.is(c.model.weights, path.join(models, 'reward-forcing', 'rewardforcing.pt'));
  assert.equal(c.generation.steps, [1000, 750, 500, 250]);
  assert.equal([c.generation.sampler, c.generation.shift, c.generation.blockFrames], ['renoise', 5, 3]);
  assert.equal([c.cache.policy, c.cache.window, c.cache.sink, c.cache.emaAlpha], ['ema-sink', 9, 3, 0.999]);
  assert.is(c.text.encoder, 'umt5');
});

const fixtures = path.join(root, 'test', 'model', 'fixtures');
const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-real-configs-'));
const vae = path.join(dir, 'vae-dim8.safetensors');

/**
 * The config's sampler, steps, cache policy and decoder kind at a small shape: the tiny transformer of the
 * checkpoint fixtures (synthetic, 16 latent channels as the Wan VAE wants), the built-in text encoder
 * (the umT5 encoder has its own tests), a Wan VAE of base width 8.
 */
function small(file: string, extra: string[] = []) {
  return loadConfig({
    file: configFile(file),
    set: [
      'model.weights=synthetic', 'model.arch.dim=6', 'model.arch.heads=1', 'model.arch.layers=2', 'model.arch.ffnDim=12',
      'model.arch.freqDim=4', 'model.arch.latentChannels=16', 'model.arch.textDim=4', 'model.arch.textLen=4',
      'model.latentHeight=8', 'model.latentWidth=8', 'text.encoder=builtin', 'generation.prompt=a red circle',
      `decoder.weights=${vae}`, 'engine.name=ort', 'engine.provider=cpu', 'engine.dtype=float32', 'engine.threads=1',
      ...extra,
    ],
  });
}

test('each config generates blocks at a small shape with its own sampler, steps, cache and decoder', async () => {
  await writeSafetensors(vae, syntheticWanVaeWeights({ ...WAN21_VAE_ARCH, dim: 8 }, 0));
  for (const file of ['self-forcing-1.3b.yaml', 'reward-forcing-1.3b.yaml']) {
    const g = await createGenerator(small(file));
    try {
      const first = await g.next();
      const second = await g.next();
      assert.is(first.frames.length, 9, file); // the Wan VAE: 1 + 4 * 2 frames from a stream's first block
      assert.is(second.frames.length, 12, file);
      assert.is(second.frames[0].length, 64 * 64 * 3, file);
    } finally {
      await g.close();
    }
  }
});

test("longlive-1.3b at a small shape: LongLive's LoRA (the fixture's lora.pt layout) merged into its base generator", async () => {
  const config = small('longlive-1.3b.yaml', [
    `model.weights=${path.join(fixtures, 'self-forcing.pt')}`, 'model.arch.latentChannels=12', 'model.latentHeight=4', 'model.latentWidth=4',
    `model.lora=${path.join(fixtures, 'longlive-lora.pt')}`, 'decoder.kind=space-to-depth', 'decoder.factor=2',
  ]);
  assert.is(config.model.generatorKey, 'generator');
  const g = await createGenerator(config);
  try {
    assert.is((await g.next()).frames.length, 3); // space-to-depth: a frame per latent frame
  } finally {
    await g.close();
  }
});

test("docs/real-models.md names each config's files and states the computed sizes of these shapes", () => {
  const doc = readFileSync(path.join(root, 'docs', 'real-models.md'), 'utf8');
  for (const file of ['self-forcing-1.3b.yaml', 'longlive-1.3b.yaml', 'reward-forcing-1.3b.yaml']) {
    const c = loadConfig({ file: configFile(file) });
    assert.ok(doc.includes(`configs/${file}`), file);
    for (const p of [c.model.weights, c.model.lora, c.text.weights, c.decoder.weights]) {
      if (p !== undefined) assert.ok(doc.includes(path.relative(root, p)), `${file}: ${path.relative(root, p)} is not in the guide`);
    }
    const dims = modelDims(c);
    const params = [...expectedShapes(dims).values()].reduce((n, shape) => n + shapeSize(shape), 0);
    assert.ok(doc.includes(params.toLocaleString('en')), `parameter count ${params}`);
    const perFrameMb = (dims.layers * 2 * dims.dim * dims.tokensPerFrame * 2) / 1e6;
    assert.ok(doc.includes(`${perFrameMb.toFixed(1)} MB per latent frame`), `${perFrameMb} MB`);
    assert.ok(doc.includes(`${c.cache.window} frames: ${((perFrameMb * c.cache.window) / 1000).toFixed(2)} GB`), `${file}: KV cache of ${c.cache.window} frames`);
  }
});

test.run();
