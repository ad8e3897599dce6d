import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SchedulerError } from '../../scheduler/errors.js';
import { config, driver, stream } from './helpers/drive.js';

// The helpers' device: every forward takes 10 ms, decode is free. A stream: 3-frame blocks every 100 ms.
// At s steps a block needs (s + 1) * 10 ms: 4 steps = half the device.

test('one stream: admitted at the top rung, every frame on time, TTFF = the planned delay', () => {
  const d = driver({});
  const decision = d.admit(stream('a', { frames: 30 }));
  assert.is(decision.admitted, true);
  if (!decision.admitted) return;
  assert.equal(decision.rung, { steps: 4, blockFrames: 3 });
  // The shortest delay the EDF test accepts: (50 ms work + 10 ms blocking) / 0.9, plus the 20 ms margin.
  assert.ok(Math.abs(decision.plannedDelayMs - (60 / 0.9 + 20)) < 1);
  d.run(2000);
  const m = d.scheduler.metrics('a', 2000);
  assert.is(m.state, 'finished');
  assert.is(m.framesDelivered, 30);
  assert.is(m.missedDeadlines, 0);
  assert.is(m.ttffMs, decision.plannedDelayMs);
  assert.equal(m.blocksBySteps, { '4': 10 });
  assert.ok(m.jitterMs.p99 < 1e-9);
});

test('steps are lowered first (newest stream first), and only when every stream is at the lowest rung is a stream refused', () => {
  const d = driver({});
  const rungs = (ids: string[]) => ids.map((id) => d.scheduler.metrics(id).rung.steps);
  assert.is(d.admit(stream('s1')).admitted, true);
  assert.equal(rungs(['s1']), [4]);
  assert.is(d.admit(stream('s2')).admitted, true);
  assert.equal(rungs(['s1', 's2']), [4, 3]); // 50 + 40 = 90% of the device
  assert.is(d.admit(stream('s3')).admitted, true);
  assert.equal(rungs(['s1', 's2', 's3']), [2, 2, 2]); // 30 * 3 = 90%
  const refused = d.admit(stream('s4'));
  assert.is(refused.admitted, false);
  if (refused.admitted) return;
  assert.is(refused.code, 'capacity');
  assert.match(refused.reason, /s4/);
  assert.match(refused.reason, /gpu0: needs 1\.20 of the device, 0\.90 allowed/);
  assert.match(refused.reason, /2 steps/);
  assert.equal(rungs(['s1', 's2', 's3']), [2, 2, 2]); // a refusal changes nothing
});

test('admitted streams keep their deadlines at full load', () => {
  const d = driver({});
  for (const id of ['s1', 's2', 's3']) d.admit(stream(id, { frames: 90 }));
  d.run(5000);
  for (const id of ['s1', 's2', 's3']) {
    const m = d.scheduler.metrics(id, 5000);
    assert.is(m.framesDelivered, 90, id);
    assert.is(m.missedDeadlines, 0, id);
  }
});

test('a TTFF objective shorter than one block at the lowest rung is refused as a deadline', () => {
  const d = driver({});
  const r = d.admit(stream('quick', { ttffMs: 30 }));
  assert.is(r.admitted, false);
  if (r.admitted) return;
  assert.is(r.code, 'deadline');
  assert.match(r.reason, /ms of work within 30 ms/);
});

test('a duplicate id is refused; a malformed spec is bad input', () => {
  const d = driver({});
  d.admit(stream('a'));
  const dup = d.admit(stream('a'));
  assert.is(dup.admitted, false);
  if (!dup.admitted) assert.is(dup.code, 'duplicate');
  try {
    d.admit({ ...stream('b'), objectives: { ...stream('b').objectives, targetFps: 0 } });
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, SchedulerError);
    assert.is((e as SchedulerError).code, 'ERR_ARGUMENT');
    assert.match((e as Error).message, /objectives\.targetFps = 0/);
  }
});

test('priority: a high-priority newcomer keeps the top rung; the low-priority stream gives way', () => {
  const d = driver({});
  d.admit(stream('low', { priority: 0 }));
  const high = d.admit(stream('high', { priority: 9 }));
  assert.is(high.admitted, true);
  if (!high.admitted) return;
  assert.equal(high.rung.steps, 4);
  assert.is(d.scheduler.metrics('low').rung.steps, 3);
  assert.equal(high.changes.map((c) => [c.streamId, c.from.steps, c.to.steps]), [['low', 4, 3]]);
});

test('when a stream leaves, the others move back up the ladder (reported in the next plan)', () => {
  const d = driver({});
  d.admit(stream('s1'));
  d.admit(stream('s2'));
  d.admit(stream('s3'));
  assert.ok(d.scheduler.remove('s3'));
  assert.is(d.scheduler.metrics('s3').state, 'removed');
  const plan = d.scheduler.tick(0);
  assert.equal(plan.changes.filter((c) => c.reason.includes("'s3' left")).map((c) => c.to.steps).sort(), [3, 4]);
});

test('a device that slows down: the speed estimate follows, steps are lowered, no stream is stopped', () => {
  const d = driver({ factor: (_, t) => (t >= 1000 ? 1.5 : 1) });
  d.admit(stream('s1', { frames: 150 }));
  d.admit(stream('s2', { frames: 150 }));
  d.run(6000);
  const changes = d.plans.flatMap((p) => p.changes).filter((c) => c.reason.includes('runs at'));
  assert.ok(changes.length > 0, 'a re-plan after the slow-down');
  assert.ok(changes.every((c) => c.to.steps < c.from.steps));
  assert.ok(Math.abs(d.scheduler.deviceState('gpu0').speed - 1.5) < 0.05);
  assert.equal(d.plans.flatMap((p) => p.stopped), []);
  const late = d.scheduler.metrics('s1', 6000).blocksBySteps;
  assert.ok((late['2'] ?? 0) + (late['3'] ?? 0) > 0);
});

test('an idle device\'s speed estimate falls back to the calibration: a slowdown seen long ago never refuses the first stream', () => {
  // 3.5 times slower than calibrated: even at 2 steps a block needs 105 ms of every 100 ms.
  const d = driver({ factor: () => 3.5 });
  d.admit(stream('slow', { frames: 60 }));
  d.run(3000);
  assert.is(d.scheduler.metrics('slow').state, 'finished');
  const seen = d.scheduler.deviceState('gpu0', 3000).speed;
  assert.ok(seen > 3, `speed estimate after the slow stream: ${seen}`);
  // Fresh, it still counts: the next stream is refused.
  const early = d.scheduler.admit(stream('early'), 3000);
  assert.is(early.admitted, false);
  // One half-life (scheduler.idleSpeedHalfLifeSeconds, 10 s) later, half of the slowdown is left.
  const half = d.scheduler.deviceState('gpu0', 13_000).speed;
  assert.ok(Math.abs(half - 1 - (seen - 1) / 2) < 1e-9, `after 10 s idle: ${half}`);
  // 79 minutes of nothing: back at the calibration, so a first stream is admitted at the top rung.
  d.clock.set(3000 + 79 * 60_000);
  const later = d.admit(stream('later'));
  assert.ok(later.admitted, JSON.stringify(later));
  if (later.admitted) assert.is(later.rung.steps, 4);
  assert.ok(Math.abs(d.scheduler.deviceState('gpu0').speed - 1) < 1e-6);
});

test('idleSpeedHalfLifeSeconds 0: the estimate is back at the calibration as soon as the device is idle; a running stream keeps its measured speed', () => {
  const d = driver({ factor: () => 3.5, config: config({ idleSpeedHalfLifeSeconds: 0 }) });
  d.admit(stream('slow', { frames: 60 }));
  d.run(1000);
  assert.ok(d.scheduler.deviceState('gpu0').speed > 3, 'measured while the stream runs, not decayed');
  d.run(3000);
  assert.is(d.scheduler.deviceState('gpu0').speed, 1);
  assert.ok(d.admit(stream('next')).admitted);
});

test('a device too slow for its streams even at the lowest rung stops the least important one, with the reason', () => {
  const d = driver({ factor: (_, t) => (t >= 500 ? 1.8 : 1) });
  d.admit(stream('vip', { priority: 5 }));
  d.admit(stream('low', { priority: 0 }));
  d.run(4000);
  const stopped = d.plans.flatMap((p) => p.stopped);
  assert.equal(stopped.map((s) => s.streamId), ['low']);
  assert.match(stopped[0].reason, /cannot keep every deadline even at the lowest rung/);
  assert.is(d.scheduler.metrics('low').state, 'stopped');
  assert.is(d.scheduler.metrics('vip').state, 'running');
});

test('streams that share a model share a forward; different models never do', () => {
  const d = driver({ coefficients: { overheadMs: 8, perItemMs: 2 } });
  d.admit(stream('a', { frames: 60 }));
  d.admit({ ...stream('b', { frames: 60 }) });
  d.admit({ ...stream('c', { frames: 60 }), model: 'other' });
  d.run(3000);
  const jobs = d.plans.flatMap((p) => p.jobs);
  assert.ok(jobs.some((j) => new Set(j.items.map((i) => i.streamId)).size > 1), 'some forward batches two streams');
  assert.ok(jobs.every((j) => new Set(j.items.map((i) => i.model)).size === 1));
  assert.ok(jobs.every((j) => j.items.length <= 4));
  for (const id of ['a', 'b', 'c']) assert.is(d.scheduler.metrics(id, 3000).missedDeadlines, 0, id);
});

test('stream batch: one stream\'s consecutive blocks share a forward at different steps, each behind the one before', () => {
  for (const batching of ['stream-batch', 'streams'] as const) {
    const d = driver({ config: config({ batching }) });
    d.admit(stream('a'));
    const first = d.scheduler.tick(0);
    d.scheduler.update(first, [{ jobId: first.jobs[0].id, startedAt: 0, finishedAt: 10 }]);
    // The host comes back late: blocks 1 and 2 (released at 100 and 200 ms) are waiting.
    const second = d.scheduler.tick(250);
    const items = second.jobs[0].items.map((i) => [i.block, i.step]);
    if (batching === 'streams') {
      assert.equal(items, [[0, 1]]);
      continue;
    }
    assert.equal(items, [[0, 1], [1, 0]]);
    d.scheduler.update(second, [{ jobId: second.jobs[0].id, startedAt: 250, finishedAt: 262 }]);
    const third = d.scheduler.tick(262);
    assert.equal(third.jobs[0].items.map((i) => [i.block, i.step]), [[0, 2], [1, 1], [2, 0]]);
  }
});

test('the same inputs give the same plans (determinism)', () => {
  const once = () => {
    const d = driver({ factor: (_, t) => (t >= 700 ? 1.3 : 1) });
    d.admit(stream('x', { frames: 60 }));
    d.admit(stream('y', { frames: 60 }));
    d.run(3000);
    return JSON.stringify(d.plans);
  };
  assert.is(once(), once());
});

test('update rejects a job it did not plan; a busy device gets no second job', () => {
  const d = driver({});
  d.admit(stream('a'));
  const plan = d.scheduler.tick(0);
  assert.is(plan.jobs.length, 1);
  assert.is(d.scheduler.tick(0).jobs.length, 0);
  assert.throws(() => d.scheduler.update(plan, [{ jobId: 999, startedAt: 0, finishedAt: 1 }]), /job 999/);
});

test.run();
