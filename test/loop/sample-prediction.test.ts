/**
 * model.arch.prediction `sample`: the head outputs the clean latent x0, and the loop turns it into the flow
 * (x - x0) / max(s, 0.05) before the sampler. A test engine that always predicts the same x0 then gets that x0 as
 * the block's denoised latent (what the clean pass and the decode receive), whatever the sampler; guided, the x0 of
 * v_u + g (v_p - v_u). The same engine read as a flow model gives something else.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import type { ForwardRequest } from '../../src/engine/types.js';
import type { PromptEncoder } from '../../src/text/prompt-encoder.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';
import { tinyLoop } from './helpers/tiny-loop.js';

const tiny = [...tinyLoop, 'decoder.kind=none'];
const BLOCKS = 3;

interface SeenForward {
  clean: boolean;
  t: number;
  position: number;
  latent: Float32Array;
}

/** The x0 the engine predicts for a block at temporal position `position`: the prompt's, or a scaled one unguided. */
function predicted(size: number, position: number, uncond: boolean): Float32Array {
  const x0 = new Float32Array(size);
  for (let i = 0; i < size; i++) x0[i] = (uncond ? 0.5 : 1) * Math.sin(0.37 * i + position) + 0.1 * position;
  return x0;
}

/** A text encoder whose context is all ones (the unconditional context is all zeros). */
function onesText(textLen: number, textDim: number): PromptEncoder {
  return { kind: 'builtin', textLen, textDim, encode: () => new Float32Array(textLen * textDim).fill(1) };
}

async function run(set: string[]) {
  const config = loadConfig({ set: [...tiny, 'generation.prompt=the prompt', ...set] });
  const seen: SeenForward[] = [];
  let uncond = false;
  const inner = rowCountingEngine({
    name: 'x0-predictor',
    flow: (r: ForwardRequest) => {
      seen.push({ clean: r.keepBlockKv, t: r.timesteps[0], position: r.framePositions[0], latent: r.latent.slice() });
      return predicted(r.latent.length, r.framePositions[0], uncond);
    },
  });
  const engine = {
    ...inner,
    async setPrompt(context: Float32Array) {
      uncond = context[0] === 0;
    },
  };
  const g = await createGenerator(config, { engine, text: onesText(config.model.arch.textLen, config.model.arch.textDim) });
  for (let b = 0; b < BLOCKS; b++) await g.next();
  await g.close();
  const cleans = seen.filter((f) => f.clean);
  assert.ok(cleans.length >= BLOCKS - 1, 'clean passes ran');
  return { config, seen, cleans };
}

/** The largest |a - b|. */
function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const sampler of ['renoise', 'ode'] as const) {
  test(`${sampler}: a sample-predicting model's predicted x0 is the block's denoised latent`, async () => {
    const { config, cleans } = await run([`generation.sampler=${sampler}`, 'model.arch.prediction=sample']);
    assert.is(config.model.arch.prediction, 'sample');
    for (const c of cleans) {
      const err = maxDiff(c.latent, predicted(c.latent.length, c.position, false));
      assert.ok(err < 1e-5, `block at position ${c.position}: off by ${err}`);
    }
  });
}

test('the same engine read as a flow model does not give its output as x0', async () => {
  const { config, cleans } = await run(['generation.sampler=renoise', 'model.arch.prediction=flow']);
  assert.is(config.model.arch.prediction, 'flow');
  for (const c of cleans) assert.ok(maxDiff(c.latent, predicted(c.latent.length, c.position, false)) > 0.1, `block at position ${c.position}`);
});

test('guided: the x0s are combined as the flows are, x0_u + g (x0_p - x0_u), converted once', async () => {
  const g = 2.5;
  const { cleans } = await run(['generation.sampler=renoise', 'model.arch.prediction=sample', `generation.guidance=${g}`]);
  for (const c of cleans) {
    const p = predicted(c.latent.length, c.position, false);
    const u = predicted(c.latent.length, c.position, true);
    const want = p.map((pi, i) => u[i] + g * (pi - u[i]));
    const err = maxDiff(c.latent, want);
    assert.ok(err < 1e-4, `block at position ${c.position}: off by ${err}`);
  }
});

test('a last step below the noise floor 0.05 divides by the floor: x0 = x - s (x - x0) / 0.05', async () => {
  const { seen, cleans } = await run(['model.arch.prediction=sample', 'generation.steps=[1000,40]', 'generation.shift=1']);
  for (const c of cleans) {
    const last = seen[seen.indexOf(c) - 1]; // the block's last step, just before its clean pass
    assert.ok(!last.clean && last.position === c.position);
    assert.ok(Math.abs(last.t - 40) < 1e-3, 'the last step at t = 40');
    const x0 = predicted(c.latent.length, c.position, false);
    const want = last.latent.map((x, i) => x - 0.04 * ((x - x0[i]) / 0.05));
    const err = maxDiff(c.latent, want);
    assert.ok(err < 1e-5, `block at position ${c.position}: off by ${err}`);
    assert.ok(maxDiff(c.latent, x0) > 0.01, 'only part way to x0');
  }
});

test.run();
