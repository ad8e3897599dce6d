/**
 * A guided stream (StreamSpec.forwardsPerStep 2, classifier-free guidance): a block at s steps costs 2s + 1 forwards
 * in admission, in the plans' predictions and in a batch of whole blocks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { batchedForwardsMs } from '../../scheduler/batching.js';
import { CostModel } from '../../scheduler/cost-model.js';
import { coefficients, driver, predictedTotalMs, runAdmitted, stream } from './helpers/drive.js';

// The helpers' device: every forward takes 10 ms, decode is free; a stream's 3-frame block every 100 ms.
const guided = (id: string, o: Parameters<typeof stream>[1] = {}) => ({ ...stream(id, o), forwardsPerStep: 2 });

test('admission: a guided block at 2 steps is 5 forwards (50 ms of every 100): a second guided stream is refused', () => {
  const d = driver({});
  assert.is(d.admit(guided('g1')).admitted, true);
  const refused = d.admit(guided('g2'));
  assert.is(refused.admitted, false);
  if (refused.admitted) return;
  assert.is(refused.code, 'capacity');
  assert.match(refused.reason, /needs 1\.00 of the device, 0\.90 allowed/);
  // The same two streams unguided (3 forwards at 2 steps) fit.
  const plain = driver({});
  assert.is(plain.admit(stream('s1')).admitted, true);
  assert.is(plain.admit(stream('s2')).admitted, true);
});

test('a guided stream runs its blocks on time, each predicted at 2s + 1 forwards', () => {
  const { d, steps } = runAdmitted(guided('g', { frames: 30 }));
  const m = d.scheduler.metrics('g', 3000);
  assert.is(m.framesDelivered, 30);
  assert.is(m.missedDeadlines, 0);
  const predicted = predictedTotalMs(d);
  assert.ok(Math.abs(predicted - 10 * (2 * steps + 1) * 10) < 1e-6, `10 blocks of ${2 * steps + 1} forwards: ${predicted} ms`);
});

test('a guided opening (openingForwardsPerStep 2): the first block is predicted at 2s + 1 forwards, the rest at s + 1', () => {
  const { d, steps } = runAdmitted({ ...stream('o', { frames: 30 }), openingForwardsPerStep: 2 });
  assert.is(d.scheduler.metrics('o', 3000).framesDelivered, 30);
  const predicted = predictedTotalMs(d);
  const expected = ((2 * steps + 1) + 9 * (steps + 1)) * 10;
  assert.ok(Math.abs(predicted - expected) < 1e-6, `one block of ${2 * steps + 1} forwards and 9 of ${steps + 1}: ${predicted} ms, expected ${expected}`);
});

test('openingForwardsPerStep and forwardsPerStep must be positive integers', () => {
  for (const key of ['forwardsPerStep', 'openingForwardsPerStep']) {
    const d = driver({});
    assert.throws(() => d.admit({ ...stream('x'), [key]: 0 }), new RegExp(`${key} = 0; expected a positive integer`));
  }
});

test('a batch of whole blocks: a guided block has 2s + 1 forwards, an unguided one s + 1', () => {
  const cost = new CostModel({ gpu: coefficients({ overheadMs: 10, perItemMs: 1 }) });
  const forwardMs = (items: readonly unknown[]) => cost.forwardMs('gpu', items.map(() => ({ queryTokens: 1, cachedTokens: 0 })));
  const block = { queryTokens: 1, cachedTokens: 0, steps: 4, latentFrames: 3 };
  assert.is(batchedForwardsMs(forwardMs, [block]), 5 * 11);
  assert.is(batchedForwardsMs(forwardMs, [{ ...block, forwardsPerStep: 2 }]), 9 * 11);
  // Together: 5 forwards join both blocks (12 ms each), the guided block's 4 more run alone (11 ms).
  assert.is(batchedForwardsMs(forwardMs, [block, { ...block, forwardsPerStep: 2 }]), 5 * 12 + 4 * 11);
  assert.is(cost.blockMs('gpu', { ...block, forwardsPerStep: 2 }), 9 * 11);
});

test.run();
