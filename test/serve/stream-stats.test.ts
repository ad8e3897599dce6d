import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamStats } from '../../src/serve/stream-stats.js';

const cache = [
  { frame: 0, role: 'sink' as const, position: 0 },
  { frame: 5, role: 'history' as const, position: 5 },
];

test('generation figures from block arrivals: time to first generated frame, capacity, block times, cache', () => {
  const s = new StreamStats(1000, 10, 4);
  s.recordBlock({ readyAt: 1300, frames: 2, totalMs: 300, cache });
  s.recordBlock({ readyAt: 1450, frames: 2, totalMs: 150, cache });
  s.recordBlock({ readyAt: 1900, frames: 2, totalMs: 450, cache });
  const f = s.snapshot();
  assert.is(f.ttfgMs, 300);
  assert.is(f.frames, 6);
  assert.is(f.blocks, 3);
  assert.ok(Math.abs(f.generationFps - 6 / 0.9) < 1e-9);
  assert.equal(f.blockMs, { p50: 300, p95: 435, p99: 447 });
  assert.is(f.cacheOccupancy, 0.5);
  assert.equal(f.cache, cache);
});

test('the generation clock an unscheduled stream is paced by: frames at the target fps, a late one moves the rest', () => {
  const s = new StreamStats(0, 10, 4);
  assert.is(s.nextDueAt, null);
  s.recordBlock({ readyAt: 1000, frames: 2, totalMs: 10, cache: [] }); // due 1000, 1100
  assert.is(s.nextDueAt, 1200);
  s.recordBlock({ readyAt: 1500, frames: 2, totalMs: 10, cache: [] }); // late: 1500, 1600
  assert.is(s.nextDueAt, 1700);
});

test.run();
