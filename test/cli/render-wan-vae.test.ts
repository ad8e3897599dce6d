/**
 * render through the Wan VAE decoder at a small shape on ORT CPU: the tiny default transformer with
 * synthetic weights and 16 latent channels, a Wan VAE checkpoint of base width 8 (the published
 * layout, narrower), 8x8 latents -> 64x64 frames. A stream's first block gives 1 + 2 * 4 = 9 frames,
 * every later one 12.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { probeVideo, tempDir } from '../encode/helpers.js';
import { WAN21_VAE_ARCH } from '../../src/decode/wan-vae/arch.js';
import { syntheticWanVaeWeights } from '../../src/decode/wan-vae/weights.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { runCli } from '../helpers/cli.js';

const SMALL = [
  '--set', 'model.arch.latentChannels=16',
  '--set', 'model.latentHeight=8',
  '--set', 'model.latentWidth=8',
  '--set', 'model.weights=synthetic',
  '--set', 'generation.opening=noise',
  '--set', 'generation.openingSteps=null',
  '--set', 'generation.steps=[1000,750,500,250]',
  '--set', 'engine.threads=1',
  '--set', 'decoder.kind=wan-vae',
];

const render = (args: string[]) => runCli(['render', '--no-progress', ...SMALL, ...args]);

const dir = tempDir('wan-vae-render');
const weights = syntheticWanVaeWeights({ ...WAN21_VAE_ARCH, dim: 8 }, 0);

test('render --frames 21 through the Wan VAE: blocks of 9 + 12 frames, 64x64', async () => {
  const file = path.join(dir, 'vae-dim8.safetensors');
  await writeSafetensors(file, weights);
  const out = path.join(dir, 'a.mp4');
  const run = await render(['--frames', '21', '--out', out, '--set', `decoder.weights=${file}`]);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /rendered 21 frames .*64x64/);
  assert.match(run.stdout, /steps 4:2\b/); // 9 + 12: no third block
  const video = await probeVideo(out);
  assert.equal([video.frames, video.width, video.height], [21, 64, 64]);
});

test('render with a Wan VAE checkpoint of a wrong shape exits 2 naming the key, and writes nothing', async () => {
  const bad = new Map(weights);
  bad.set('decoder.upsamples.4.residual.2.weight', { shape: [32, 16, 3, 3], data: new Float32Array(32 * 16 * 9) });
  const file = path.join(dir, 'vae-bad.safetensors');
  await writeSafetensors(file, bad);
  const out = path.join(dir, 'b.mp4');
  const run = await render(['--frames', '9', '--out', out, '--set', `decoder.weights=${file}`]);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /decoder\.upsamples\.4\.residual\.2\.weight' has shape \[32, 16, 3, 3\], expected \[32, 16, 3, 3, 3\]/);
  assert.not.ok(fs.existsSync(out));
});

test.run();
