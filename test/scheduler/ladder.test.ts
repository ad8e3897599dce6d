import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assignRungs, nextToLower, rungsFrom, type LadderMember } from '../../scheduler/ladder.js';

test('rungs: every step count from the highest, each block size in preference order', () => {
  assert.equal(rungsFrom([2, 4, 3], [3, 4]), [
    { steps: 4, blockFrames: 3 },
    { steps: 4, blockFrames: 4 },
    { steps: 3, blockFrames: 3 },
    { steps: 3, blockFrames: 4 },
    { steps: 2, blockFrames: 3 },
    { steps: 2, blockFrames: 4 },
  ]);
});

const rungs = rungsFrom([4, 3, 2], [3]);
/** A member costing (steps + 1) * 10 ms every 100 ms, deadline 100 ms. */
const member = (id: string, priority: number, order: number): LadderMember => ({
  id,
  priority,
  order,
  rungs,
  load: (r) => ({ id, periodMs: 100, costMs: (rungs[r].steps + 1) * 10, deadlineMs: 100, longestUnitMs: 0 }),
});

test('lowering order: lowest priority first, equals evenly (highest rung first), then the latest admitted', () => {
  const members = [member('old', 0, 1), member('new', 0, 2), member('vip', 5, 3)];
  const order: string[] = [];
  const current = new Map(members.map((m) => [m.id, 0]));
  for (let v = nextToLower(members, current); v; v = nextToLower(members, current)) {
    order.push(v.id);
    current.set(v.id, current.get(v.id)! + 1);
  }
  assert.equal(order, ['new', 'old', 'new', 'old', 'vip', 'vip']);
});

test('assignment: the highest rungs that pass, degrading the low priority first', () => {
  // 4 steps cost 50 ms per 100 ms, 3 steps 40, 2 steps 30. Three streams need 100 ms at most:
  // new 3, old 3, new 2, old 2 (110 ms), then vip 3: 30 + 30 + 40 = 100 -> feasible.
  const three = assignRungs([member('old', 0, 1), member('new', 0, 2), member('vip', 5, 3)], 1);
  assert.is(three.feasible, true);
  assert.equal(Object.fromEntries(three.rungs), { old: 2, new: 2, vip: 1 });
  const two = assignRungs([member('low', 0, 1), member('vip', 5, 2)], 0.8);
  assert.equal(Object.fromEntries(two.rungs), { low: 2, vip: 0 }); // 30 + 50 = 80; vip keeps 4 steps
});

test('no assignment passes: the test at the lowest rungs comes back with its reason', () => {
  const four = assignRungs([member('a', 0, 1), member('b', 0, 2), member('c', 0, 3), member('d', 0, 4)], 1);
  assert.is(four.feasible, false);
  if (four.feasible) return;
  assert.is(four.test.reason, 'utilisation');
  assert.equal([...four.rungs.values()], [2, 2, 2, 2]);
});

test('assignment stops at the first feasible point: the highest rung that still meets every deadline', () => {
  const two = assignRungs([member('a', 0, 1), member('b', 0, 2)], 0.8);
  // 50 + 50 -> b to 3 steps: 50 + 40 = 90 -> a to 3: 80 -> feasible at capacity 0.8.
  assert.is(two.feasible, true);
  assert.equal(Object.fromEntries(two.rungs), { a: 1, b: 1 });
});

test.run();
