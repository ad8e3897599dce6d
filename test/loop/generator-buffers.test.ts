/**
 * The loop keeps one latent, one noise and one flow array for the whole stream (the host's turn between two
 * forwards allocates nothing): every forward still gets, to the bit, the latent of the float32 sampler with new
 * arrays at each step, whether or not the engine writes into the `flowInto` array it is offered; and the block's
 * denoised latent, which the clean pass, the decode and the re-cache keep, is an array of its own.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { gaussianNoise } from '../../src/loop/noise.js';
import { warpTimesteps } from '../../src/loop/timesteps.js';
import type { ForwardRequest } from '../../src/engine/types.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';
import { tinyLoop } from './helpers/tiny-loop.js';

const tiny = [...tinyLoop, 'model.arch.prediction=flow', 'decoder.kind=none'];
const BLOCKS = 3;

interface SeenForward {
  t: number;
  clean: boolean;
  latent: Float32Array;
  flow: Float32Array;
  /** The arrays themselves, to see which are used again. */
  latentArray: Float32Array;
  flowInto: Float32Array | undefined;
  flowArray: Float32Array;
}

/** A flow that depends on the latent, the cache and the position; written into flowInto when `takesFlowInto`. */
async function run(sampler: 'renoise' | 'ode', takesFlowInto: boolean) {
  const config = loadConfig({ set: [...tiny, `generation.sampler=${sampler}`, 'generation.seed=11'] });
  const seen: SeenForward[] = [];
  const engine = rowCountingEngine({
    name: 'latent-flow',
    flow: (r: ForwardRequest, rows: number) => {
      const flow = takesFlowInto && r.flowInto ? r.flowInto : new Float32Array(r.latent.length);
      for (let i = 0; i < flow.length; i++) flow[i] = 0.3 * r.latent[i] + 0.01 * (rows / 64) - 0.1 * r.framePositions[0] + 1e-3 * (i % 7);
      seen.push({
        t: r.timesteps[0],
        clean: r.keepBlockKv,
        latent: r.latent.slice(),
        flow: flow.slice(),
        latentArray: r.latent,
        flowInto: r.flowInto,
        flowArray: flow,
      });
      return flow;
    },
  });
  const g = await createGenerator(config, { engine });
  for (let b = 0; b < BLOCKS; b++) await g.next();
  await g.close();
  return { config, seen };
}

const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

for (const sampler of ['renoise', 'ode'] as const) {
  test(`${sampler}: every forward's latent is the float32 sampler's with new arrays at each step, the flow array offered or not`, async () => {
    const taking = await run(sampler, true);
    const ignoring = await run(sampler, false);
    const { config, seen } = taking;
    const sigmas = warpTimesteps(config.generation.steps, config.generation.shift).map((t) => t / 1000);
    const steps = sigmas.length;
    const size = seen[0].latent.length;
    assert.is(seen.length, BLOCKS * (steps + 1), 'steps and a clean pass per block');
    for (let b = 0; b < BLOCKS; b++) {
      const block = seen.slice(b * (steps + 1), (b + 1) * (steps + 1));
      assert.equal(block.map((f) => f.clean), [...Array(steps).fill(false), true]);
      // the reference: a new array for every x0 and x, as the loop computed before it kept its arrays
      let x = gaussianNoise(size, config.generation.seed, b, 0);
      let x0 = new Float32Array(size);
      for (let k = 0; k < steps; k++) {
        assert.equal(bits(block[k].latent), bits(x), `block ${b} step ${k}: latent`);
        const v = block[k].flow;
        x0 = new Float32Array(size);
        for (let i = 0; i < size; i++) x0[i] = x[i] - sigmas[k] * v[i];
        if (k < steps - 1) {
          const next = sigmas[k + 1];
          const fresh = new Float32Array(size);
          if (sampler === 'renoise') {
            const n = gaussianNoise(size, config.generation.seed, b, k + 1);
            for (let i = 0; i < size; i++) fresh[i] = (1 - next) * x0[i] + next * n[i];
          } else {
            for (let i = 0; i < size; i++) fresh[i] = x[i] + (next - sigmas[k]) * v[i];
          }
          x = fresh;
        }
      }
      assert.equal(bits(block[steps].latent), bits(x0), `block ${b}: the clean pass gets x0`);
    }
    // the engine that ignores flowInto sees the same latents and flows
    assert.equal(
      ignoring.seen.map((f) => [f.t, bits(f.latent), bits(f.flow)]),
      seen.map((f) => [f.t, bits(f.latent), bits(f.flow)]),
    );
  });
}

test('one latent and one flow array for every step of the stream; each block keeps its own denoised latent', async () => {
  const { seen, config } = await run('renoise', true);
  const steps = config.generation.steps.length;
  const stepForwards = seen.filter((f) => !f.clean);
  const cleanPasses = seen.filter((f) => f.clean);
  assert.ok(stepForwards.every((f) => f.latentArray === stepForwards[0].latentArray), 'the steps share one latent array');
  assert.ok(seen.every((f) => f.flowInto !== undefined && f.flowInto === seen[0].flowInto), 'every forward is offered the one flow array');
  assert.ok(seen.every((f) => f.flowArray === f.flowInto), 'and the engine wrote into it');
  assert.is(new Set(cleanPasses.map((f) => f.latentArray)).size, BLOCKS, 'a new x0 per block');
  assert.ok(cleanPasses.every((f) => f.latentArray !== stepForwards[0].latentArray));
  // what a block's clean pass was given has not been written over by the later blocks
  for (let b = 0; b < BLOCKS; b++) {
    const c = seen[b * (steps + 1) + steps];
    assert.equal(bits(c.latentArray), bits(c.latent), `block ${b}: its x0 kept as it was`);
  }
});

test.run();
