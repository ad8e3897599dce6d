/**
 * Classifier-free guidance in the loop (generation.guidance != 1): each denoising step runs the prompt's forward and
 * the unconditional one on the same latent, timesteps and positions, and the sampler follows
 * v_uncond + g * (v_prompt - v_uncond); the clean pass stays one forward under the prompt. A recording engine sees
 * which context it held at every forward (setPrompt) and gives a flow that depends on it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { loadConfig, defaultConfigPath } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { warpTimesteps } from '../../src/loop/timesteps.js';
import type { ForwardRequest } from '../../src/engine/types.js';
import type { PromptEncoder } from '../../src/text/prompt-encoder.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';
import { tinyLoop } from './helpers/tiny-loop.js';

const tiny = [...tinyLoop, 'model.arch.prediction=flow', 'decoder.kind=none'];
const presets = path.join(path.dirname(defaultConfigPath), 'presets');

interface SeenForward {
  /** The prompt the engine held ('' for the all-zero context). */
  context: string;
  clean: boolean;
  keepQueries: ForwardRequest['keepQueries'];
  t: number[];
  positions: number[];
  latent: Float32Array;
  flow: Float32Array;
}

/** A text encoder whose context of a prompt is recognisable: every value is the prompt's number (1, 2, ...) / 8. */
function taggedText(textLen: number, textDim: number) {
  const prompts: string[] = [];
  const encoder: PromptEncoder = {
    kind: 'builtin',
    textLen,
    textDim,
    encode(prompt: string) {
      if (!prompts.includes(prompt)) prompts.push(prompt);
      return new Float32Array(textLen * textDim).fill((prompts.indexOf(prompt) + 1) / 8);
    },
  };
  const nameOf = (context: Float32Array): string => {
    const v = context[0];
    assert.ok(context.every((x) => x === v), 'a context the encoder made (or all zero)');
    return v === 0 ? '' : prompts[Math.round(v * 8) - 1];
  };
  return { encoder, prompts, nameOf };
}

async function run(set: string[], blocks: number, between?: (g: Awaited<ReturnType<typeof createGenerator>>, block: number) => Promise<void>, file?: string) {
  const config = loadConfig({ ...(file ? { file } : {}), set: [...tiny, 'generation.prompt=the prompt', ...set] });
  const text = taggedText(config.model.arch.textLen, config.model.arch.textDim);
  let held: Float32Array | null = null;
  const seen: SeenForward[] = [];
  const setPrompts: string[] = [];
  const inner = rowCountingEngine({
    name: 'context-flow',
    queriesId: (r) => (r.keepQueries === 'none' ? undefined : 1),
    scores: (rows) => new Float32Array(config.model.arch.layers * rows).map((_, i) => (i * 7919) % 13),
    flow: (r, rows) => {
      const c = held![0];
      const flow = new Float32Array(r.latent.length);
      for (let i = 0; i < flow.length; i++) flow[i] = 0.3 * r.latent[i] + c * (1 + (i % 3)) - 0.05 * r.framePositions[0] + 1e-4 * rows;
      seen.push({
        context: text.nameOf(held!),
        clean: r.keepBlockKv,
        keepQueries: r.keepQueries,
        t: [...r.timesteps],
        positions: [...r.framePositions],
        latent: r.latent.slice(),
        flow: flow.slice(),
      });
      return flow;
    },
  });
  const engine = {
    ...inner,
    async setPrompt(context: Float32Array) {
      held = context.slice();
      setPrompts.push(text.nameOf(held));
    },
  };
  const g = await createGenerator(config, { engine, text: text.encoder });
  const out = [];
  for (let b = 0; b < blocks; b++) {
    out.push(await g.next());
    await between?.(g, b);
  }
  await g.close();
  return { config, seen, setPrompts, blocks: out };
}

/** A block's forwards: 2 per denoising step then the clean pass. */
function blockForwards(seen: SeenForward[], steps: number, b: number): SeenForward[] {
  const n = 2 * steps + 1;
  return seen.slice(b * n, (b + 1) * n);
}

/** The first element where two arrays differ in their float32 bits, -1 when none (uvu's diff of long arrays is slow). */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.findIndex((v, i) => v !== ub[i]);
}

test('guidance 2.5, ode: two forwards a step on the same latent, timesteps and positions, one per context; the clean pass once, under the prompt', async () => {
  const g = 2.5;
  const { config, seen } = await run([`generation.guidance=${g}`, 'generation.sampler=ode'], 3);
  const steps = config.generation.steps.length;
  const sigmas = warpTimesteps(config.generation.steps, config.generation.shift).map((t) => t / 1000);
  assert.is(seen.length, 3 * (2 * steps + 1), '2 forwards a step and the clean pass, every block');
  for (let b = 0; b < 3; b++) {
    const forwards = blockForwards(seen, steps, b);
    for (let k = 0; k < steps; k++) {
      const pair = forwards.slice(2 * k, 2 * k + 2);
      assert.equal(pair.map((f) => f.context).sort(), ['', 'the prompt'], `block ${b} step ${k}: the prompt's and the empty prompt's forward`);
      assert.ok(pair.every((f) => !f.clean), 'denoising forwards keep no K/V');
      assert.is(firstBitDifference(pair[0].latent, pair[1].latent), -1, 'the same latent');
      assert.equal(pair[0].t, pair[1].t);
      assert.equal(pair[0].positions, pair[1].positions);
      assert.ok(pair[0].t.every((t) => Math.abs(t - sigmas[k] * 1000) < 1e-3), 'the step timestep');
      // The next latent: x + (s_next - s) * v, v the guided flow rounded to float32.
      const cond = pair.find((f) => f.context === 'the prompt')!.flow;
      const uncond = pair.find((f) => f.context === '')!.flow;
      const x = pair[0].latent;
      const expected = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const v = Math.fround(uncond[i] + g * (cond[i] - uncond[i]));
        expected[i] = k < steps - 1 ? x[i] + (sigmas[k + 1] - sigmas[k]) * v : x[i] - sigmas[k] * v;
      }
      const next = forwards[2 * k + 2].latent; // the next step's latent, or the clean pass's x0
      assert.is(firstBitDifference(next, expected), -1, `block ${b} step ${k}: the guided flow, exactly`);
    }
    const clean = forwards[2 * steps];
    assert.ok(clean.clean, 'the clean pass');
    assert.is(clean.context, 'the prompt', 'the clean pass runs under the prompt');
    assert.ok(clean.t.every((t) => t === 0));
  }
});

test('guidance: an odd step count ends a block on the unconditional context; the clean pass sets the prompt back', async () => {
  const { seen, setPrompts } = await run(['generation.guidance=3', 'generation.steps=[1000,500,250]'], 3);
  const steps = 3;
  for (let b = 0; b < 3; b++) {
    const forwards = blockForwards(seen, steps, b);
    assert.is(forwards.filter((f) => f.context === '').length, steps, `block ${b}: one unconditional forward a step`);
    assert.is(forwards[2 * steps].context, 'the prompt');
    assert.ok(forwards[2 * steps].clean);
  }
  // Switches only where the context changes: once a step, plus the clean pass's when a block ends unconditional.
  const changes = seen.filter((f, i) => i > 0 && f.context !== seen[i - 1].context).length;
  assert.is(setPrompts.length, 1 + changes, 'setPrompt only when the other context is needed');
});

test('guidance with a negative prompt: the unconditional context is its encoding', async () => {
  const { seen, setPrompts } = await run(['generation.guidance=2', 'generation.negativePrompt=blurry, static'], 2);
  const contexts = new Set(seen.map((f) => f.context));
  assert.equal([...contexts].sort(), ['blurry, static', 'the prompt']);
  assert.ok(!setPrompts.includes(''), 'no all-zero context');
  assert.ok(seen.filter((f) => f.clean).every((f) => f.context === 'the prompt'));
});

test('guidance: the queries kept for participative compression come from the prompt forward only', async () => {
  const { seen } = await run(['generation.guidance=2'], 8, undefined, path.join(presets, 'deep-forcing.yaml'));
  const denoising = seen.filter((f) => !f.clean);
  const kept = denoising.filter((f) => f.keepQueries !== 'none');
  assert.ok(kept.length > 0, 'compression ran');
  assert.ok(kept.every((f) => f.context === 'the prompt'), 'queries kept only by the prompt forward');
});

test('guidance: after a prompt switch the guided forward uses the new prompt, the unconditional stays', async () => {
  const { config, seen } = await run(['generation.guidance=2'], 4, async (g, b) => {
    if (b === 1) await g.setPrompt('the new prompt');
  });
  const steps = config.generation.steps.length;
  const n = 2 * steps + 1;
  // Block 2 starts with the switch: its re-cache forward under the new prompt, then its steps.
  const late = seen.slice(2 * n);
  const denoising = late.filter((f) => !f.clean);
  assert.equal([...new Set(denoising.map((f) => f.context))].sort(), ['', 'the new prompt']);
  assert.ok(late.filter((f) => f.clean).every((f) => f.context === 'the new prompt'), 'clean passes and the re-cache under the new prompt');
  assert.ok(seen.slice(0, 2 * n).every((f) => f.context !== 'the new prompt'));
});

test('openingGuidance 3 with guidance 1: the first block guided (two forwards a step, the guided flow), every later block one forward a step under the prompt', async () => {
  const g = 3;
  const { config, seen } = await run([`generation.openingGuidance=${g}`, 'generation.steps=[1000,500,250]'], 3);
  const steps = config.generation.steps.length;
  const opening = seen.slice(0, 2 * steps + 1);
  for (let k = 0; k < steps; k++) {
    assert.equal(opening.slice(2 * k, 2 * k + 2).map((f) => f.context).sort(), ['', 'the prompt'], `opening step ${k}: both contexts`);
  }
  assert.ok(opening[2 * steps].clean && opening[2 * steps].context === 'the prompt', "the opening's clean pass under the prompt");
  const later = seen.slice(2 * steps + 1);
  assert.is(later.length, 2 * (steps + 1), 'blocks 1 and 2: one forward a step and the clean pass');
  assert.ok(later.every((f) => f.context === 'the prompt'), 'unguided blocks run under the prompt (the odd step count left the uncond context held)');
  // The opening's frames are those of a stream guided at 3 everywhere; the next block's are not.
  const everywhere = await run([`generation.guidance=${g}`, 'generation.steps=[1000,500,250]'], 2);
  const openingOnly = await run([`generation.openingGuidance=${g}`, 'generation.steps=[1000,500,250]'], 2);
  const unguided = await run(['generation.steps=[1000,500,250]'], 1);
  const latentOf = (r: typeof everywhere, i: number) => r.seen[i].latent;
  assert.is(firstBitDifference(latentOf(openingOnly, 2 * steps), latentOf(everywhere, 2 * steps)), -1, "the opening's x0 (its clean pass input) as when guided everywhere");
  assert.ok(firstBitDifference(latentOf(openingOnly, 2 * steps), latentOf(unguided, steps)) >= 0, 'and not the unguided x0');
  const nextClean = (r: typeof everywhere) => r.seen.filter((f) => f.clean)[1].latent;
  assert.ok(firstBitDifference(nextClean(openingOnly), nextClean(everywhere)) >= 0, 'block 1 is not guided');
});

test('openingGuidance 1 with guidance 2.5: the opening unguided, the later blocks guided', async () => {
  const { config, seen } = await run(['generation.guidance=2.5', 'generation.openingGuidance=1'], 2);
  const steps = config.generation.steps.length;
  assert.ok(seen.slice(0, steps + 1).every((f) => f.context === 'the prompt'), 'the opening: one forward a step under the prompt');
  assert.is(seen.length, steps + 1 + 2 * steps + 1);
  assert.equal([...new Set(seen.slice(steps + 1).filter((f) => !f.clean).map((f) => f.context))].sort(), ['', 'the prompt']);
});

test('openingGuidance with a drawn opening (opening: scene) changes nothing: the first block is not denoised', async () => {
  const prompt = 'a red circle bouncing on a dark green background';
  const drawn = await run(['generation.opening=scene', 'decoder.kind=space-to-depth', `generation.prompt=${prompt}`, 'generation.openingGuidance=3'], 2);
  assert.ok(drawn.seen[0].clean, 'the drawn block goes straight to its clean pass');
  assert.ok(drawn.seen.every((f) => f.context === prompt), 'no unconditional forward');
});

test('guidance 1: one forward a step under the prompt, setPrompt once', async () => {
  const { config, seen, setPrompts } = await run([], 3);
  const steps = config.generation.steps.length;
  assert.is(seen.length, 3 * (steps + 1));
  assert.ok(seen.every((f) => f.context === 'the prompt'));
  assert.equal(setPrompts, ['the prompt']);
});

test.run();
