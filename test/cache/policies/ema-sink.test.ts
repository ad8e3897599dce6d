import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EmaSinkPolicy } from '../../../src/cache/policies/ema-sink.js';
import type { HeldFrame } from '../../../src/cache/types.js';
import { drivePolicy, range, soleFrame } from '../helpers/drive.js';

test('defaults are Reward Forcing: W 9, S 3, alpha 0.99', () => {
  const p = new EmaSinkPolicy();
  assert.equal([p.window, p.sink, p.alpha], [9, 3, 0.99]);
});

test('slots start as the first S frames; each evicted (oldest) frame is fused into its slot; exact EMA weights', () => {
  const W = 9;
  const S = 3;
  const F = 3;
  for (const alpha of [0.5, 0.99]) {
    drivePolicy(new EmaSinkPolicy({ window: W, sink: S, alpha }), 40, F, ({ index, blockStart, plan, mixes }) => {
      if (index === 0) return assert.is(plan.slots.length, 0);
      assert.equal(plan.slots.slice(0, S).map((s) => [s.frame, s.role]), range(0, Math.min(S, blockStart)).map((f) => [f, 'sink']));
      // History: the last W - S - F frames, untouched.
      const history = mixes.slice(S).map(soleFrame);
      const historyStart = Math.max(S, blockStart - (W - S - F));
      assert.equal(history, range(historyStart, blockStart - historyStart), `block ${index}`);
      // Frames historyStart - 1 and older have been fused: slot i holds frames i, i+S, i+2S, ...
      const fusedUpTo = historyStart; // exclusive
      for (let i = 0; i < Math.min(S, blockStart); i++) {
        const chain = range(0, Math.ceil(fusedUpTo / S)).map((k) => i + k * S).filter((f) => f < fusedUpTo);
        const evictions = chain.length - 1;
        const mix = mixes[i];
        assert.equal([...mix.keys()].sort((a, b) => a - b), chain, `block ${index} slot ${i}`);
        let expected = 1;
        for (let k = 0; k < evictions; k++) expected *= alpha;
        assert.is(mix.get(i), expected, `slot ${i} weight of its first frame after ${evictions} evictions`);
        // The newest fused frame carries 1 - alpha, the one before (1 - alpha) * alpha, ...
        chain.slice(1).forEach((f, k) => {
          let w = 1 - alpha;
          for (let m = 0; m < evictions - 1 - k; m++) w *= alpha;
          assert.ok(Math.abs(mix.get(f)! - w) < 1e-15, `slot ${i} frame ${f}`);
        });
        const total = [...mix.values()].reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(total - 1) < 1e-12);
      }
      // Re-indexed by place: sink right before the history, the block after.
      assert.equal(plan.slots.map((s) => s.position), range(0, plan.slots.length));
      assert.equal(plan.queryPositions, range(plan.slots.length, F));
      assert.ok(plan.slots.length + F <= W);
      if (index >= 3) assert.is(plan.slots.length, W - F);
    });
  }
});

test('fewer evicted frames than slots: they go into the oldest slots', () => {
  const p = new EmaSinkPolicy({ window: 8, sink: 3, alpha: 0.5 });
  const held: HeldFrame[] = [0, 1, 2].map((f, i) => ({ frame: f, role: 'sink', position: i }));
  held.push({ frame: 3, role: 'history' as const, position: 3 }, { frame: 4, role: 'history' as const, position: 4 });
  // room for history = 8 - 2 - 3 = 3; 2 held + 2 incoming = 4 -> frame 3 leaves, into slot 0.
  const plan = p.planBlock({ held, incoming: [{ frame: 5 }, { frame: 6 }], blockStart: 7, blockFrames: 2 });
  assert.equal(plan.slots[0].terms, [
    { ref: { held: 0 }, weight: 0.5 },
    { ref: { held: 3 }, weight: 0.5 },
  ]);
  assert.equal(plan.slots[1].terms, [{ ref: { held: 1 }, weight: 1 }]);
  assert.equal(plan.slots[2].terms, [{ ref: { held: 2 }, weight: 1 }]);
  assert.equal(plan.slots.slice(3).map((s) => s.frame), [4, 5, 6]);
});

test('more evicted frames than slots: chained in order', () => {
  const alpha = 0.5;
  const p = new EmaSinkPolicy({ window: 7, sink: 2, alpha });
  const held = [
    { frame: 0, role: 'sink' as const, position: 0 },
    { frame: 1, role: 'sink' as const, position: 1 },
    { frame: 2, role: 'history' as const, position: 2 },
    { frame: 3, role: 'history' as const, position: 3 },
  ];
  // room = 7 - 3 - 2 = 2: 2 held + 3 incoming -> 3 leave (frames 2, 3, 4): slot 0 gets 2 then 4, slot 1 gets 3.
  const plan = p.planBlock({ held, incoming: [{ frame: 4 }, { frame: 5 }, { frame: 6 }], blockStart: 7, blockFrames: 3 });
  assert.equal(plan.slots[0].terms, [
    { ref: { held: 0 }, weight: alpha * alpha },
    { ref: { held: 2 }, weight: (1 - alpha) * alpha },
    { ref: { incoming: 0 }, weight: 1 - alpha },
  ]);
  assert.equal(plan.slots[1].terms, [
    { ref: { held: 1 }, weight: alpha },
    { ref: { held: 3 }, weight: 1 - alpha },
  ]);
  assert.equal(plan.slots.slice(2).map((s) => s.frame), [5, 6]);
});

test('bounded over 100k frames: constant size, positions inside the table', () => {
  const W = 9;
  const F = 3;
  drivePolicy(new EmaSinkPolicy({ window: W, sink: 3, ropeMaxPosition: 1024 }), Math.ceil(100_000 / F), F, ({ index, plan }) => {
    if (index >= 3) assert.is(plan.slots.length, W - F);
    assert.ok([...plan.slots.map((s) => s.position), ...plan.queryPositions].every((p) => p >= 0 && p < W));
  }, false);
});

test.run();
