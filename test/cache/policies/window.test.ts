import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WindowPolicy } from '../../../src/cache/policies/window.js';
import { drivePolicy, range, soleFrame } from '../helpers/drive.js';

test('keeps the last W - F frames at their own frame index; the block follows', () => {
  const W = 12;
  const F = 3;
  drivePolicy(new WindowPolicy({ window: W }), 40, F, ({ index, blockStart, plan, mixes }) => {
    const expected = range(Math.max(0, blockStart - (W - F)), Math.min(blockStart, W - F));
    assert.equal(mixes.map(soleFrame), expected, `block ${index}`);
    assert.equal(plan.slots.map((s) => s.frame), expected);
    assert.equal(plan.slots.map((s) => s.position), expected);
    assert.ok(plan.slots.every((s) => s.role === 'history'));
    assert.equal(plan.queryPositions, range(blockStart, F));
    assert.ok(plan.slots.length + F <= W);
    assert.is(plan.positionShift, 0);
  });
});

test('defaults: window 12', () => {
  assert.is(new WindowPolicy().window, 12);
});

test('positions stay inside the RoPE table over 100k frames, relative distances exact', () => {
  const W = 12;
  const F = 3;
  const table = 1024;
  let shifted = 0;
  drivePolicy(new WindowPolicy({ window: W, ropeMaxPosition: table }), Math.ceil(100_000 / F), F, ({ blockStart, plan }) => {
    const all = [...plan.slots.map((s) => s.position), ...plan.queryPositions];
    assert.ok(all.every((p) => p >= 0 && p < table), `block at ${blockStart}: ${all}`);
    // Attention sees differences: query - key must equal the frames' distance in the video.
    for (const s of plan.slots) assert.is(plan.queryPositions[0] - s.position, blockStart - s.frame);
    if (blockStart + F <= table) assert.is(plan.queryPositions[0], blockStart);
    else {
      assert.is(plan.queryPositions[F - 1], table - 1);
      shifted++;
    }
    if (blockStart > W) assert.is(plan.slots.length, W - F);
  });
  assert.ok(shifted > 30_000);
});

test('asked to keep all (participative compression), nothing is evicted', () => {
  const W = 12;
  const F = 3;
  const p = new WindowPolicy({ window: W });
  const held = range(0, 9).map((f) => ({ frame: f, role: 'history' as const, position: f }));
  const input = { held, incoming: range(9, 3).map((frame) => ({ frame })), blockStart: 12, blockFrames: F };
  assert.equal(p.planBlock(input).slots.map((s) => s.frame), range(3, 9));
  const all = p.planBlock({ ...input, keepAll: true });
  assert.equal(all.slots.map((s) => [s.frame, s.position]), range(0, 12).map((f) => [f, f]));
  assert.equal(all.queryPositions, [12, 13, 14]);
});

test.run();
