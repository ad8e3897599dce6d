/**
 * The playout ledger pins the one definition of a stream's TTFF, latency, jitter and misses
 * (docs/serving.md, *Figures*): given deliveries at known times, these exact figures.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PlayoutLedger, percentiles } from '../../src/serve/playout-ledger.js';

test('percentiles: linearly interpolated', () => {
  const v = Array.from({ length: 101 }, (_, i) => i);
  assert.equal(percentiles(v), { p50: 50, p95: 95, p99: 99 });
  assert.equal(percentiles([10, 20]), { p50: 15, p95: 19.5, p99: 19.9 });
  assert.equal(percentiles([]), { p50: 0, p95: 0, p99: 0 });
  assert.equal(percentiles([7]), { p50: 7, p95: 7, p99: 7 });
});

test('TTFF, latency, jitter and misses of a sequence of deliveries at 10 fps', () => {
  // created at 1000; T = 100 ms; frame n's place on the timeline is 1000 + 100 n
  const ledger = new PlayoutLedger(1000, 10);
  assert.is(ledger.figures(1200).ttffMs, null);
  assert.is(ledger.figures(1200).deadlineMisses, 0, 'nothing is due before the first frame');
  ledger.frameDelivered(0, 1500); // shown 1500, latency 500: TTFF 500
  ledger.frameDelivered(1, 1520); // due 1600, shown 1600, latency 500
  ledger.frameDelivered(2, 1700); // due 1700: on time (not late), latency 500
  ledger.frameDelivered(3, 1950); // due 1800, 150 late: 2 slots missed, shown 1950, latency 650
  ledger.frameDelivered(4, 2000); // due 2050, shown 2050, latency 650
  const f = ledger.figures(2100);
  assert.is(f.ttffMs, 500);
  assert.is(f.framesDelivered, 5);
  assert.is(f.deadlineMisses, 2);
  assert.is(f.missRate, 2 / 7);
  assert.equal(f.latencyMs, { p50: 500, p95: 650, p99: 650 });
  // jitter: 0, 0, 150, 0
  assert.is(f.jitterMs.p50, 0);
  assert.ok(Math.abs(f.jitterMs.p95 - 127.5) < 1e-9 && Math.abs(f.jitterMs.p99 - 145.5) < 1e-9, JSON.stringify(f.jitterMs));
});

test('a gap (an encoder restart) counts every slot without a frame, while it lasts and after', () => {
  const ledger = new PlayoutLedger(0, 4); // T = 250 ms
  for (let n = 0; n < 4; n++) ledger.frameDelivered(n, 1000 + n * 250); // on time: shown 1000 .. 1750
  assert.is(ledger.figures(2000).deadlineMisses, 0, 'frame 4 is due at 2000: not late yet');
  // the encoder dies holding frames 4 and 5; nothing arrives for 6 s
  assert.is(ledger.figures(2001.5).deadlineMisses, 1);
  assert.is(ledger.figures(3000).deadlineMisses, 4);
  assert.is(ledger.figures(8000).deadlineMisses, 24);
  // the new encoder's first frame is frame 6 (4 and 5 were lost), 6 s after frame 4 was due
  ledger.frameDelivered(6, 8000);
  ledger.frameDelivered(7, 8100); // due 8250: on time
  const f = ledger.figures(8250);
  assert.is(f.deadlineMisses, 24);
  assert.is(f.framesDelivered, 6);
  assert.is(f.missRate, 24 / 30);
  // frame 6's place is 1500: shown 8000, latency 6500
  assert.is(f.latencyMs.p99 > 6400, true);
});

test('a stopped stream owes nothing after its end', () => {
  const ledger = new PlayoutLedger(0, 10);
  ledger.frameDelivered(0, 100);
  ledger.frameDelivered(1, 200);
  ledger.end(250);
  assert.is(ledger.figures(10_000).deadlineMisses, 0);
});

test('a stream running ahead of its deadlines never misses; delivered fps over the last 5 s', () => {
  const ledger = new PlayoutLedger(0, 16);
  for (let n = 0; n < 160; n++) ledger.frameDelivered(n, 200 + Math.floor(n / 3) * 100); // 30 fps of frames, in blocks of 3
  const f = ledger.figures(5500);
  assert.is(f.deadlineMisses, 0);
  assert.equal(f.latencyMs, { p50: 200, p95: 200, p99: 200 }, 'every frame shown at its slot: latency = TTFF');
  assert.is(f.deliveredFps, 151 / 5, 'the frames delivered from 500 ms on');
  assert.is(ledger.figures(20_000).deliveredFps, 0);
});

test('frames are delivered in order', () => {
  const ledger = new PlayoutLedger(0, 10);
  ledger.frameDelivered(3, 100);
  assert.throws(() => ledger.frameDelivered(3, 200), /frame 3 delivered after frame 3/);
});

test.run();
