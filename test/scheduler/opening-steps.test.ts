/**
 * StreamSpec.openingStepScale: the first block runs round(steps * scale) denoising steps (a longer opening list,
 * generation.openingSteps), and the scheduler predicts and plans it at that count; the later blocks keep the rung's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stepsOfBlock } from '../../scheduler/scheduler.js';
import { driver, predictedTotalMs, runAdmitted, stream } from './helpers/drive.js';

test('openingStepScale 2: the first block is planned at 2s steps and predicted at 2s + 1 forwards, the rest at s + 1', () => {
  const { d, steps } = runAdmitted({ ...stream('o', { frames: 30 }), openingStepScale: 2 });
  assert.is(d.scheduler.metrics('o', 3000).framesDelivered, 30);
  const items = d.plans.flatMap((p) => p.jobs).flatMap((j) => j.items);
  assert.ok(items.filter((i) => i.block === 0).every((i) => i.steps === 2 * steps), 'block 0 at 2s steps');
  assert.ok(items.filter((i) => i.block > 0).every((i) => i.steps === steps), 'later blocks at the rung');
  const predicted = predictedTotalMs(d);
  const expected = (2 * steps + 1 + 9 * (steps + 1)) * 10;
  assert.ok(Math.abs(predicted - expected) < 1e-6, `one block of ${2 * steps + 1} forwards and 9 of ${steps + 1}: ${predicted} ms, expected ${expected}`);
});

test('stepsOfBlock: only the first block is scaled, rounded, at least one step; absent scale leaves the rung', () => {
  assert.is(stepsOfBlock({ openingStepScale: 2 }, 0, 4), 8);
  assert.is(stepsOfBlock({ openingStepScale: 2 }, 1, 4), 4);
  assert.is(stepsOfBlock({ openingStepScale: 1.5 }, 0, 3), 5);
  assert.is(stepsOfBlock({ openingStepScale: 0.25 }, 0, 1), 1);
  assert.is(stepsOfBlock({}, 0, 4), 4);
});

test('openingStepScale must be a positive number', () => {
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    const d = driver({});
    assert.throws(() => d.admit({ ...stream('x'), openingStepScale: bad }), /openingStepScale = .*; expected a positive number/);
  }
});

test.run();
