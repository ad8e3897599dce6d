import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeepSinkPolicy } from '../../../src/cache/policies/deep-sink.js';
import { drivePolicy, range, soleFrame } from '../helpers/drive.js';

const W = 21;
const S = 10;
const F = 3;

test('defaults are the paper: W 21, S 10', () => {
  const p = new DeepSinkPolicy();
  assert.equal([p.window, p.sink], [21, 10]);
});

test('sink frame i re-aligned to f0 - N + i at every block; history at its own index', () => {
  drivePolicy(new DeepSinkPolicy({ window: W, sink: S }), 50, F, ({ index, blockStart: f0, plan, mixes }) => {
    const frames = mixes.map(soleFrame);
    const sinkCount = Math.min(S, f0);
    const historyStart = Math.max(S, f0 - (W - S - F));
    assert.equal(frames, [...range(0, sinkCount), ...range(historyStart, Math.max(0, f0 - historyStart))], `block ${index}`);
    const N = plan.slots.length;
    plan.slots.forEach((s, i) => {
      if (i < sinkCount) {
        assert.is(s.role, 'sink');
        assert.is(s.position, f0 - N + i, `block ${index} sink ${i}`);
      } else {
        assert.is(s.role, 'history');
        assert.is(s.position, s.frame);
      }
    });
    // Sink, history and block form one contiguous run of positions ending at the block.
    assert.equal([...plan.slots.map((s) => s.position), ...plan.queryPositions], range(f0 - N, N + F));
    assert.ok(N + F <= W);
    if (index >= 7) assert.is(N, W - F);
  });
});

test('over 100k frames: positions inside the table, layout relative to the block unchanged', () => {
  const table = 1024;
  drivePolicy(new DeepSinkPolicy({ window: W, sink: S, ropeMaxPosition: table }), Math.ceil(100_000 / F), F, ({ blockStart, plan }) => {
    const all = [...plan.slots.map((s) => s.position), ...plan.queryPositions];
    assert.ok(all.every((p) => p >= 0 && p < table), `block at ${blockStart}`);
    const q0 = plan.queryPositions[0];
    const N = plan.slots.length;
    assert.equal(plan.slots.map((s) => q0 - s.position), range(1, N).reverse());
    if (blockStart + F > table) assert.is(plan.queryPositions[F - 1], table - 1);
  });
});

test('asked to keep all (participative compression): nothing evicted, sink re-aligned before everything kept', () => {
  const p = new DeepSinkPolicy({ window: W, sink: S });
  const held = range(0, 19).map((f) => ({ frame: f, role: f < S ? ('sink' as const) : ('history' as const), position: f }));
  const plan = p.planBlock({ held, incoming: range(19, 3).map((frame) => ({ frame })), blockStart: 22, blockFrames: F, keepAll: true });
  assert.is(plan.slots.length, 22);
  assert.equal(plan.slots.slice(0, S).map((s) => s.position), range(0, S));
});

test.run();
