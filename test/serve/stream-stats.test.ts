import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { percentiles, StreamStats } from '../../src/serve/stream-stats.js';

const cache = [
  { frame: 0, role: 'sink' as const, position: 0 },
  { frame: 5, role: 'history' as const, position: 5 },
];

test('percentiles: nearest rank', () => {
  const v = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentiles(v), { p50: 50, p95: 95, p99: 99 });
  assert.equal(percentiles([]), { p50: 0, p95: 0, p99: 0 });
  assert.equal(percentiles([7]), { p50: 7, p95: 7, p99: 7 });
});

test('TTFF, latency, jitter, misses and fps from block arrivals at 10 fps', () => {
  const s = new StreamStats(1000, 10, 4);
  // block 0: 2 frames, started at 1000, ready at 1300 -> due 1300, 1400 (played 1300, 1400)
  let r = s.recordBlock({ startedAt: 1000, readyAt: 1300, frames: 2, totalMs: 300, cache });
  assert.equal(r, { latencyMs: [300, 300], jitterMs: [0], misses: 0 });
  // block 1: started 1300, ready 1450 -> frame 2 due 1500, frame 3 due 1600: on time
  r = s.recordBlock({ startedAt: 1300, readyAt: 1450, frames: 2, totalMs: 150, cache });
  assert.equal(r, { latencyMs: [150, 150], jitterMs: [150, 0], misses: 0 });
  // block 2: started 1450, ready 1900 -> frame 4 due 1700 (late: miss, played 1900), frame 5 due 2000: on time
  r = s.recordBlock({ startedAt: 1450, readyAt: 1900, frames: 2, totalMs: 450, cache });
  assert.is(r.misses, 1);
  s.recordFirstFragment(1320);
  s.recordFirstFragment(1999); // only the first counts
  const f = s.snapshot(2000);
  assert.is(f.ttffMs, 320);
  assert.is(f.ttfgMs, 300);
  assert.is(f.frames, 6);
  assert.is(f.blocks, 3);
  assert.is(f.deadlineMisses, 1);
  assert.is(f.missRate, 1 / 6);
  assert.ok(Math.abs(f.generationFps - 6 / 0.9) < 1e-9);
  assert.equal(f.latencyMs, { p50: 300, p95: 450, p99: 450 });
  assert.equal(f.blockMs, { p50: 300, p95: 450, p99: 450 });
  assert.ok(Math.abs(f.fps - 6 / 0.7) < 1e-9); // 6 frames since the first frame at 1300
  assert.is(f.cacheOccupancy, 0.5);
  assert.equal(f.cache, cache);
  // 5 s later nothing new arrived: delivered fps falls to 0
  assert.is(s.snapshot(8000).fps, 0);
});

test('a stream running ahead of its deadline never misses', () => {
  const s = new StreamStats(0, 16, 9);
  let t = 0;
  for (let b = 0; b < 50; b++) {
    const start = t;
    t += 100; // 3 frames every 100 ms = 30 fps of capacity against 16 target
    s.recordBlock({ startedAt: start, readyAt: t, frames: 3, totalMs: 100, cache: [] });
  }
  const f = s.snapshot(t);
  assert.is(f.deadlineMisses, 0);
  assert.ok(Math.abs(f.generationFps - 30) < 1e-9);
});

test.run();
