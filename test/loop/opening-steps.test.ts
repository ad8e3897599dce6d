/**
 * generation.openingSteps: the first block opened from noise denoises over its own timesteps, the later blocks over
 * generation.steps; the scheduler's step count for the first block counts the opening's steps; a drawn opening and
 * null leave every block on generation.steps.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { warpTimesteps } from '../../src/loop/timesteps.js';
import { openingStepScaleOf } from '../../src/loop/opening-steps.js';
import { scheduledStreamSpec } from '../../src/realtime/stream-spec.js';
import { SinkstreamError } from '../../src/errors.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';
import { tinyLoop } from './helpers/tiny-loop.js';

const tiny = [...tinyLoop, 'model.arch.prediction=flow', 'decoder.kind=none'];
const eight = 'generation.openingSteps=[1000,875,750,625,500,375,250,125]';

interface Seen { t: number; clean: boolean }

/** Runs `blocks` blocks (each with next(options[b])) on an engine that records every forward's timestep. */
async function run(set: string[], blocks: number, options: Array<{ steps?: number }> = []) {
  const config = loadConfig({ set: [...tiny, ...set] });
  const seen: Seen[] = [];
  const engine = rowCountingEngine({
    name: 'timestep-recording',
    onForward: (r) => void seen.push({ t: r.timesteps[0], clean: r.keepBlockKv }),
    flow: (r) => new Float32Array(r.latent.length).fill(0.1),
  });
  const g = await createGenerator(config, { engine });
  const steps: number[] = [];
  for (let b = 0; b < blocks; b++) steps.push((await g.next(options[b] ?? {})).steps);
  await g.close();
  // Each block's denoising timesteps, split at the clean passes.
  const perBlock: number[][] = [[]];
  for (const f of seen) {
    if (f.clean) perBlock.push([]);
    else perBlock[perBlock.length - 1].push(f.t);
  }
  return { config, steps, perBlock: perBlock.slice(0, blocks) };
}

const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-3);

test('openingSteps of 8: the first block denoises at its 8 warped timesteps, every later block at the 4 of generation.steps', async () => {
  const { config, steps, perBlock } = await run([eight], 3);
  assert.equal(steps, [8, 4, 4]);
  const shift = config.generation.shift;
  assert.ok(close(perBlock[0], warpTimesteps(config.generation.openingSteps!, shift)), `opening: ${perBlock[0]}`);
  for (const b of [1, 2]) assert.ok(close(perBlock[b], warpTimesteps(config.generation.steps, shift)), `block ${b}: ${perBlock[b]}`);
});

test('a step count asked for the first block counts the opening list: 2 of 8 are evenly spaced from 1000', async () => {
  const { config, steps, perBlock } = await run([eight], 2, [{ steps: 2 }, { steps: 2 }]);
  assert.equal(steps, [2, 2]);
  assert.ok(close(perBlock[0], warpTimesteps([1000, 500], config.generation.shift)));
  assert.ok(close(perBlock[1], warpTimesteps([1000, 500], config.generation.shift)));
});

test('null (and a drawn opening) leave the first block on generation.steps', async () => {
  const plain = await run(['generation.openingSteps=null'], 2);
  assert.equal(plain.steps, [4, 4]);
  const drawn = await run([eight, 'generation.opening=scene', 'decoder.kind=space-to-depth', 'generation.prompt=a red circle bouncing on a dark green background'], 2);
  assert.equal(drawn.steps, [0, 4], 'the drawn block is not denoised, the next takes generation.steps');
});

test("the stream spec scales the first block's steps by the opening's share, and only when it differs", () => {
  const spec = (set: string[]) => scheduledStreamSpec(loadConfig({ set: [...tiny, ...set] }), 's', { videoFramesPerLatentFrame: 1 });
  assert.is(spec([eight]).openingStepScale, 2);
  assert.is(spec(['generation.openingSteps=[1000,500]']).openingStepScale, 0.5);
  assert.not.ok('openingStepScale' in spec(['generation.openingSteps=null']));
  assert.not.ok('openingStepScale' in spec(['generation.openingSteps=[1000,750,500,250]']), 'as many as generation.steps');
  assert.not.ok('openingStepScale' in spec([eight, 'generation.opening=scene', 'decoder.kind=space-to-depth']), 'a drawn opening is not denoised');
  assert.is(openingStepScaleOf(loadConfig({ set: [...tiny, eight] })), 2);
});

test('an empty or out-of-range openingSteps is refused, naming the key', () => {
  for (const value of ['[]', '[1000,0]', '[1200]', 'eight']) {
    try {
      loadConfig({ set: [...tiny, `generation.openingSteps=${value}`] });
      assert.unreachable(`openingSteps=${value} accepted`);
    } catch (e) {
      assert.instance(e, SinkstreamError);
      assert.is((e as SinkstreamError).code, 'ERR_CONFIG_INVALID');
      assert.match((e as SinkstreamError).message, 'generation.openingSteps');
    }
  }
});

test.run();
