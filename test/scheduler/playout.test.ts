import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Playout } from '../../scheduler/playout.js';

// 10 fps: a frame every 100 ms; start at 1000, planned delay 500 -> slot(n) = 1500 + 100 n.
test('frames on time leave at their slots: constant latency, no jitter, TTFF = planned delay', () => {
  const p = new Playout(1000, 500, 10);
  p.blockReady(0, 3, 1400);
  p.blockReady(3, 3, 1750);
  const s = p.summary(10_000, 6);
  assert.is(s.framesDelivered, 6);
  assert.is(s.missedDeadlines, 0);
  assert.is(s.ttffMs, 500);
  assert.equal(s.latencies, [500, 500, 500, 500, 500, 500]);
  assert.is(s.jitterMs.p99, 0);
});

test('a late block is shown when ready, counts as missed, and the slots after it do not move', () => {
  const p = new Playout(1000, 500, 10);
  p.blockReady(0, 3, 1400);
  p.blockReady(3, 3, 1850); // frame 3's slot is 1800, frame 4's 1900
  p.blockReady(6, 3, 2000);
  const s = p.summary(10_000, 9);
  assert.is(s.missedDeadlines, 1);
  assert.equal(s.latencies, [500, 500, 500, 550, 500, 500, 500, 500, 500]);
  assert.is(Math.max(...s.latencies), 550);
  assert.ok(s.jitterMs.p99 > 0);
});

test('slots that pass with nothing ready count as missed; frames not yet due do not', () => {
  const p = new Playout(0, 200, 10);
  p.blockReady(0, 2, 100);
  const s = p.summary(650); // slots 200, 300 shown; 400, 500, 600 passed empty
  assert.is(s.framesDelivered, 2);
  assert.is(s.missedDeadlines, 3);
  assert.is(s.missRate, 3 / 5);
});

test('a late first frame moves the timeline: TTFF is when it came, later frames keep that pace', () => {
  const p = new Playout(0, 200, 10);
  p.blockReady(0, 2, 350);
  p.blockReady(2, 2, 500);
  const s = p.summary(10_000, 4);
  assert.is(s.ttffMs, 350);
  assert.is(s.missedDeadlines, 1);
  assert.equal(s.latencies, [350, 350, 350, 350]);
});

test('blocks must arrive in order', () => {
  const p = new Playout(0, 200, 10);
  assert.throws(() => p.blockReady(3, 3, 10), /expected frame 0/);
});

test.run();
