import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { balance, bottleneckMs, imbalance, PipelineBalancer, simulatePipeline, stageTimes, type Split, type StageWork } from '../../scheduler/pipeline.js';

const work = (layerMs: number[], extra: Partial<StageWork> = {}): StageWork => ({
  layerMs,
  stageOverheadMs: 0,
  firstExtraMs: 0,
  lastExtraMs: 0,
  transferMs: 0,
  ...extra,
});

/** Every contiguous split of `layers` into `parts` non-empty ranges. */
function allSplits(layers: number, parts: number): Split[] {
  if (parts === 1) return [[[0, layers]]];
  const out: Split[] = [];
  for (let cut = 1; cut <= layers - parts + 1; cut++) {
    for (const rest of allSplits(layers - cut, parts - 1)) out.push([[0, cut], ...rest.map(([a, b]): [number, number] => [a + cut, b + cut])]);
  }
  return out;
}

test('uneven layer costs: the split is the best contiguous one (checked against every split)', () => {
  const w = work([5, 1, 1, 1, 9, 2, 2, 3, 1, 4], { firstExtraMs: 2, lastExtraMs: 6, stageOverheadMs: 0.5 });
  for (const devices of [1, 2, 3, 4]) {
    const split = balance(w, devices);
    const best = Math.min(...allSplits(10, devices).map((s) => bottleneckMs(w, s)));
    assert.ok(Math.abs(bottleneckMs(w, split) - best) < 1e-9, `${devices} devices`);
    assert.is(split.length, devices);
    assert.is(split[0][0], 0);
    assert.is(split[devices - 1][1], 10);
    for (let j = 1; j < devices; j++) assert.is(split[j][0], split[j - 1][1]);
  }
});

test('equal layers: an even split; the last stage, which decodes, gets fewer layers', () => {
  assert.equal(balance(work(new Array(30).fill(1)), 3), [[0, 10], [10, 20], [20, 30]]);
  const split = balance(work(new Array(30).fill(1), { lastExtraMs: 4 }), 2);
  assert.ok(split[1][1] - split[1][0] < split[0][1] - split[0][0]);
  assert.ok(imbalance(stageTimes(work(new Array(30).fill(1), { lastExtraMs: 4 }), split)) < 1.1);
});

test('more devices than layers is refused with a reason', () => {
  assert.throws(() => balance(work([1, 1]), 3), /3 devices for 2 layers/);
});

test('drift: a device that slows down loses layers once the measured stage times say so', () => {
  const w = work(new Array(32).fill(1));
  const b = new PipelineBalancer(w, 4, { threshold: 0.1, smoothing: 0.5 });
  assert.equal(b.split, [[0, 8], [8, 16], [16, 24], [24, 32]]);
  // Measurements as predicted: nothing moves.
  for (let i = 0; i < 10; i++) assert.is(b.record([8, 8, 8, 8]), false);
  // Stage 2 now takes twice as long.
  let changed = false;
  for (let i = 0; i < 20 && !changed; i++) {
    const times = b.split.map(([a, e], j) => (e - a) * (j === 2 ? 2 : 1));
    changed = b.record(times);
  }
  assert.ok(changed);
  assert.is(b.rebalances, 1);
  const [, , slow] = b.split;
  assert.ok(slow[1] - slow[0] < 8, `stage 2 keeps ${slow[1] - slow[0]} layers`);
  assert.ok(bottleneckMs(w, b.split, [1, 1, 2, 1]) < 16 * 0.8);
});

test('small drift under the threshold does not move layers', () => {
  const b = new PipelineBalancer(work(new Array(32).fill(1)), 4, { threshold: 0.1, smoothing: 0.5 });
  for (let i = 0; i < 30; i++) b.record([8, 8, 8.4, 8]);
  assert.is(b.rebalances, 0);
});

test('pipeline simulation: every stage stays busy with one micro-batch per stage; throughput scales with devices', () => {
  const w = work(new Array(30).fill(2), { stageOverheadMs: 1, lastExtraMs: 3, transferMs: 0.2 });
  const run = (devices: number, inFlight = devices) =>
    simulatePipeline({ work: w, devices, passesPerBlock: 5, videoFramesPerBlock: 12, inFlight, durationMs: 10_000, latencyObjectiveMs: 10_000 });
  const one = run(1);
  const two = run(2);
  const four = run(4);
  assert.ok(two.fps / one.fps > 1.8, `2 devices: ${two.fps / one.fps}`);
  assert.ok(four.fps / one.fps > 3.3, `4 devices: ${four.fps / one.fps}`);
  for (const r of [one, two, four]) assert.ok(Math.min(...r.stageUtilisation) > 0.85, JSON.stringify(r.stageUtilisation));
  // Without the stream batch (one micro-batch in flight) the stages take turns.
  const alone = run(4, 1);
  assert.ok(Math.max(...alone.stageUtilisation) < 0.35);
  assert.ok(alone.fps < one.fps);
});

test('pipeline simulation: a slowed device is rebalanced and throughput recovers part of the loss', () => {
  const w = work(new Array(32).fill(2), { stageOverheadMs: 0.5 });
  const base = { work: w, devices: 4, passesPerBlock: 5, videoFramesPerBlock: 12, durationMs: 20_000, latencyObjectiveMs: 10_000, seed: 3 };
  const slow = (d: number, at: number) => (d === 1 && at >= 5000 ? 2 : 1);
  const fixed = simulatePipeline({ ...base, trueSpeed: slow, balancer: { threshold: 10, smoothing: 0.3 } }); // never rebalances
  const balanced = simulatePipeline({ ...base, trueSpeed: slow, balancer: { threshold: 0.1, smoothing: 0.3 } });
  assert.is(fixed.rebalances, 0);
  assert.ok(balanced.rebalances >= 1);
  assert.ok(balanced.fps > fixed.fps * 1.2, `${balanced.fps} vs ${fixed.fps}`);
  assert.ok(balanced.finalSplit[1][1] - balanced.finalSplit[1][0] < 8);
});

test.run();
