/**
 * generation.blockStart: `previous-frame` starts each block after the first from the last frame of the block before,
 * noised to the first step's level, and denoises over generation.steps from there; `noise` starts from pure noise. The
 * first block after a prompt switch starts from noise over the opening's steps; steps from 1000 leave the previous frame
 * no weight.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { gaussianNoise } from '../../src/loop/noise.js';
import { warpTimesteps, warpSigma } from '../../src/loop/timesteps.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';
import { tinyLoop } from './helpers/tiny-loop.js';

const tiny = [...tinyLoop, 'model.arch.prediction=flow', 'decoder.kind=none'];
const warm = ['generation.blockStart=previous-frame', 'generation.steps=[600,450,300,150]'];

/** Each frame f of a block denoises to the constant level(f): the flow is (x - level(f)) / s at noise level s. */
const level = (f: number) => 0.1 * (f + 1);

interface Forward { t: number; clean: boolean; latent: Float32Array }

async function run(set: string[], blocks: number, switchAt?: number) {
  const config = loadConfig({ set: [...tiny, ...set] });
  const seen: Forward[] = [];
  const F = config.generation.blockFrames;
  const engine = rowCountingEngine({
    name: 'frame-levels',
    onForward: (r) => void seen.push({ t: r.timesteps[0], clean: r.keepBlockKv, latent: r.latent.slice() }),
    flow: (r) => {
      const s = r.timesteps[0] / 1000;
      const plane = config.model.latentHeight * config.model.latentWidth;
      const v = new Float32Array(r.latent.length);
      if (s === 0) return v;
      for (let i = 0; i < v.length; i++) v[i] = (r.latent[i] - level(Math.floor(i / plane) % F)) / s;
      return v;
    },
  });
  const g = await createGenerator(config, { engine });
  // Each block's denoising forwards: those made while its next() ran (clean passes and a switch's re-cache left out).
  const perBlock: Forward[][] = [];
  for (let b = 0; b < blocks; b++) {
    if (b === switchAt) await g.setPrompt('a yellow triangle bouncing on a dark blue background');
    const from = seen.length;
    await g.next();
    perBlock.push(seen.slice(from).filter((f) => !f.clean));
  }
  await g.close();
  return { config, perBlock, F };
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) =>
  a.length === b.length && Array.from(a).every((v, i) => Math.abs(v - b[i]) < tol);

test('previous-frame: block 1 starts at (1 - s0) x the last frame of block 0 + s0 x its noise, and denoises over generation.steps', async () => {
  const { config, perBlock, F } = await run(warm, 3);
  const shift = config.generation.shift;
  const s0 = warpSigma(0.6, shift);
  for (const b of [1, 2]) {
    assert.ok(close(perBlock[b].map((f) => f.t), warpTimesteps([600, 450, 300, 150], shift), 1e-3), `block ${b}: ${perBlock[b].map((f) => f.t)}`);
    const first = perBlock[b][0].latent;
    const noise = gaussianNoise(first.length, config.generation.seed, b, 0);
    const expected = noise.map((n) => (1 - s0) * level(F - 1) + s0 * n);
    assert.ok(close(first, expected, 1e-4), `block ${b} did not start from its previous frame`);
  }
  // the first block has no previous frame: pure noise over 4 steps from 1000 (openingSteps null: as many as steps)
  assert.ok(close(perBlock[0].map((f) => f.t), warpTimesteps([1000, 750, 500, 250], shift), 1e-3), `block 0: ${perBlock[0].map((f) => f.t)}`);
  assert.ok(close(perBlock[0][0].latent, gaussianNoise(perBlock[0][0].latent.length, config.generation.seed, 0, 0)));
});

test('noise: every block starts from its pure noise (the check above can fail)', async () => {
  const { config, perBlock } = await run(['generation.steps=[1000,750,500,250]'], 2);
  const first = perBlock[1][0].latent;
  assert.ok(close(first, gaussianNoise(first.length, config.generation.seed, 1, 0)));
});

test('the first block after a prompt switch starts from pure noise over the opening steps; the next one from its previous frame again', async () => {
  const { config, perBlock, F } = await run([...warm, 'generation.openingSteps=[1000,875,750,625,500,375,250,125]'], 4, 2);
  const shift = config.generation.shift;
  assert.is(perBlock[2].length, 8, 'the switched block denoises over the 8 opening steps');
  assert.ok(close(perBlock[2].map((f) => f.t), warpTimesteps(config.generation.openingSteps!, shift), 1e-3));
  const first = perBlock[2][0].latent;
  assert.ok(close(first, gaussianNoise(first.length, config.generation.seed, 2, 0)), 'the switched block starts from pure noise');
  const s0 = warpSigma(0.6, shift);
  const next = perBlock[3][0].latent;
  const noise = gaussianNoise(next.length, config.generation.seed, 3, 0);
  assert.ok(close(next, noise.map((n) => (1 - s0) * level(F - 1) + s0 * n), 1e-4), 'block 3 starts from block 2');
});

test('previous-frame with steps from 1000: the previous frame has no weight, every block starts from its pure noise', async () => {
  const { config, perBlock } = await run(['generation.blockStart=previous-frame', 'generation.steps=[1000,750,500,250]'], 2);
  const first = perBlock[1][0].latent;
  assert.ok(close(first, gaussianNoise(first.length, config.generation.seed, 1, 0)));
});

test.run();
