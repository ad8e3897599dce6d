import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SinkPolicy } from '../../../src/cache/policies/sink.js';
import { drivePolicy, range, soleFrame } from '../helpers/drive.js';

const W = 12;
const S = 3;
const F = 3;

function expectedFrames(blockStart: number): number[] {
  const sink = range(0, Math.min(S, blockStart));
  const historyStart = Math.max(S, blockStart - (W - S - F));
  return [...sink, ...range(historyStart, Math.max(0, blockStart - historyStart))];
}

test('absolute: frames 0..S-1 stay forever at 0..S-1, then the last W - S - F frames at their index', () => {
  drivePolicy(new SinkPolicy({ window: W, sink: S, positions: 'absolute' }), 60, F, ({ index, blockStart, plan, mixes }) => {
    const frames = expectedFrames(blockStart);
    assert.equal(mixes.map(soleFrame), frames, `block ${index}`);
    assert.equal(plan.slots.map((s) => s.position), frames);
    assert.equal(plan.slots.map((s) => s.role), frames.map((f) => (f < S ? 'sink' : 'history')));
    assert.equal(plan.queryPositions, range(blockStart, F));
    assert.ok(plan.slots.length + F <= W);
    if (index >= 4) assert.is(plan.slots.length, W - F);
  });
});

test('cache: every slot at its place in the cache, the block right after', () => {
  drivePolicy(new SinkPolicy({ window: W, sink: S, positions: 'cache' }), 60, F, ({ index, blockStart, plan, mixes }) => {
    const frames = expectedFrames(blockStart);
    assert.equal(mixes.map(soleFrame), frames, `block ${index}`);
    assert.equal(plan.slots.map((s) => s.position), range(0, frames.length));
    assert.equal(plan.queryPositions, range(frames.length, F));
  });
});

test('a retuned sink size: extra sink frames become history, missing ones come from the oldest history', () => {
  const held = [0, 1, 2, 6, 7, 8, 9, 10, 11].map((frame) => ({ frame, role: (frame < 3 ? 'sink' : 'history') as 'sink' | 'history', position: frame }));
  const incoming = [12, 13, 14].map((frame) => ({ frame }));
  const smaller = new SinkPolicy({ window: 7, sink: 1, positions: 'absolute' }).planBlock({ held, incoming, blockStart: 15, blockFrames: 3 });
  assert.equal(smaller.slots.map((s) => [s.frame, s.role]), [[0, 'sink'], [12, 'history'], [13, 'history'], [14, 'history']]);
  const fewer = held.map((h) => ({ ...h, role: (h.frame === 0 ? 'sink' : 'history') as 'sink' | 'history' }));
  const larger = new SinkPolicy({ window: 12, sink: 3, positions: 'absolute' }).planBlock({ held: fewer, incoming, blockStart: 15, blockFrames: 3 });
  assert.equal(larger.slots.filter((s) => s.role === 'sink').map((s) => s.frame), [0, 1, 2]);
  assert.is(larger.slots.length, 9);
});

test('defaults are LongLive: W 12, S 3, absolute positions', () => {
  const p = new SinkPolicy();
  assert.equal([p.window, p.sink, p.positions], [12, 3, 'absolute']);
});

test('absolute over 100k frames: the sink stays at 0..S-1, the window stops at the table end, gap capped', () => {
  const table = 1024;
  let sawCap = false;
  drivePolicy(new SinkPolicy({ window: W, sink: S, ropeMaxPosition: table }), Math.ceil(100_000 / F), F, ({ blockStart, plan }) => {
    const all = [...plan.slots.map((s) => s.position), ...plan.queryPositions];
    assert.ok(all.every((p) => p >= 0 && p < table), `block at ${blockStart}`);
    const sink = plan.slots.filter((s) => s.role === 'sink');
    if (blockStart >= S) assert.equal(sink.map((s) => s.position), range(0, S));
    const history = plan.slots.filter((s) => s.role === 'history');
    // Within the window (history and block) distances stay exact.
    for (const s of history) assert.is(plan.queryPositions[0] - s.position, blockStart - s.frame);
    if (blockStart + F > table) {
      sawCap = true;
      assert.is(plan.queryPositions[F - 1], table - 1);
      // The gap from the sink to the window no longer grows.
      assert.is(history[0].position, table - (W - S));
      assert.is(plan.ownPositionFloor, S);
    } else {
      assert.is(plan.positionShift, 0);
    }
  });
  assert.ok(sawCap);
});

test('asked to keep all (participative compression): nothing evicted', () => {
  const p = new SinkPolicy({ window: W, sink: S });
  const held = range(0, 9).map((f) => ({ frame: f, role: f < S ? ('sink' as const) : ('history' as const), position: f }));
  const plan = p.planBlock({ held, incoming: range(9, 3).map((frame) => ({ frame })), blockStart: 12, blockFrames: F, keepAll: true });
  assert.equal(plan.slots.map((s) => s.frame), range(0, 12));
});

test.run();
