/**
 * The runtime scheduler on virtual time (deterministic): admission and its refusal with the reason,
 * blocks at full steps when there is capacity, the ladder lowering steps under an injected slowdown
 * and raising them again, streams leaving or stopped by the scheduler, its decisions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../scheduler/clock.js';
import { SinkstreamError, exitStatusFor } from '../../src/errors.js';
import { RuntimeScheduler, type SchedulerDecision } from '../../src/realtime/runtime-scheduler.js';
import { runScheduledBlock } from '../../src/realtime/scheduled-block.js';
import { ManualTimers, VirtualGenerator, costModel, runUntil, schedulerConfig, spec, streamLoop } from './helpers/virtual-time.js';

function setup(o: { model?: ReturnType<typeof costModel>; config?: Record<string, unknown>; lanes?: number } = {}) {
  const clock = new VirtualClock(0);
  const timers = new ManualTimers(clock);
  const decisions: SchedulerDecision[] = [];
  const runtime = new RuntimeScheduler({
    costModel: o.model ?? costModel(),
    device: 'dev',
    lanes: o.lanes,
    config: schedulerConfig(o.config),
    clock,
    timers,
    onDecision: (d) => decisions.push(d),
  });
  return { clock, timers, runtime, decisions };
}

test("a malformed spec is this project's bad input (the scheduler's own error turned into ERR_ARGUMENT)", () => {
  const { runtime } = setup();
  const bad = { ...spec('a'), tokensPerFrame: 0 };
  for (const call of [() => runtime.admit(bad), () => runtime.check(bad)]) {
    try {
      call();
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, SinkstreamError);
      assert.is((e as SinkstreamError).code, 'ERR_ARGUMENT');
      assert.match((e as Error).message, /tokensPerFrame = 0/);
      assert.is(exitStatusFor(e), 2);
    }
  }
});

test('with capacity: every block at full steps, on time; TTFF and latency = the planned delay; blocks start at their release', async () => {
  const { clock, timers, runtime } = setup();
  const admission = runtime.admit(spec('a', { frames: 60 }));
  assert.ok(admission.admitted);
  if (!admission.admitted) return;
  const gen = new VirtualGenerator(clock);
  const starts: number[] = [];
  const loop = streamLoop(admission.stream, gen, async (s, g) => {
    const r = await runScheduledBlock(s, { next: (o) => (starts.push(clock.now()), g.next(o)) });
    return r;
  });
  await runUntil(clock, timers, 10_000);
  await loop.done;
  assert.is(gen.steps.length, 20);
  assert.ok(gen.steps.every((s) => s === 4), `steps ${gen.steps}`);
  // A block is released when its first frame's place on the timeline comes: every 100 ms.
  assert.equal(starts, starts.map((_, i) => i * 100));
  const m = admission.stream.metrics(Infinity);
  assert.is(m.state, 'finished');
  assert.is(m.framesDelivered, 60);
  assert.is(m.missedDeadlines, 0);
  assert.is(m.ttffMs, admission.decision.plannedDelayMs);
  assert.ok(Math.abs(m.latencyMs.p99 - admission.decision.plannedDelayMs) < 1e-6);
  assert.equal(m.blocksBySteps, { '4': 20 });
});

test('a stream whose block takes longer than its deadline allows is refused, with the reason', () => {
  // A forward of 100 ms: a 4-step block is 500 ms, 2 steps 300 ms, for 3 frames every 100 ms.
  const { runtime, decisions } = setup({ model: costModel('dev', { overheadMs: 100 }) });
  const refused = runtime.admit(spec('slow'));
  assert.is(refused.admitted, false);
  if (refused.admitted) return;
  assert.is(refused.decision.code, 'capacity');
  assert.match(refused.decision.reason, /slow/);
  assert.match(refused.decision.reason, /needs 3\.00 of the device, 0\.90 allowed/);
  assert.is(decisions[0].kind, 'refused');
  assert.is(runtime.decisionCounts.refused, 1);
  assert.is(runtime.size, 0);
});

test('an injected slowdown: the ladder lowers steps, keeps the deadlines, and raises them when the device recovers', async () => {
  const { clock, timers, runtime, decisions } = setup();
  const admission = runtime.admit(spec('a'));
  assert.ok(admission.admitted);
  if (!admission.admitted) return;
  const gen = new VirtualGenerator(clock);
  const loop = streamLoop(admission.stream, gen, runScheduledBlock);
  await runUntil(clock, timers, 2000);
  assert.ok(gen.steps.every((s) => s === 4));
  // The device becomes 1.7x slower: 4 steps = 85 ms, 3 steps = 68 ms of every 100 ms.
  gen.slowdown = 1.7;
  await runUntil(clock, timers, 6000);
  const slow = gen.steps.slice(-20);
  assert.ok(slow.every((s) => s < 4), `steps while slow: ${slow}`);
  assert.ok(decisions.some((d) => d.kind === 'lowered' && d.streamId === 'a' && /x1\.\d\d of its calibrated time/.test(d.message)), JSON.stringify(decisions));
  const missedWhileSlow = admission.stream.metrics().missedDeadlines;
  gen.slowdown = 1;
  await runUntil(clock, timers, 10_000);
  assert.is(gen.steps[gen.steps.length - 1], 4, `steps after recovery: ${gen.steps.slice(-10)}`);
  assert.ok(decisions.some((d) => d.kind === 'raised'));
  const m = admission.stream.metrics();
  assert.is(m.missedDeadlines, missedWhileSlow, 'no misses after the ladder settled');
  assert.ok(Object.keys(m.blocksBySteps).length >= 2, JSON.stringify(m.blocksBySteps));
  admission.stream.leave();
  await loop.done;
});

test('two streams share the device; when one leaves, the other moves back up the ladder and the scheduler forgets the one that left', async () => {
  const { clock, timers, runtime, decisions } = setup();
  const a = runtime.admit(spec('a'));
  const b = runtime.admit(spec('b'));
  assert.ok(a.admitted && b.admitted);
  if (!a.admitted || !b.admitted) return;
  // 4 + 3 steps = 90% of the device: the newer stream is lowered.
  assert.is(a.stream.metrics().rung.steps, 4);
  assert.is(b.stream.metrics().rung.steps, 3);
  const ga = new VirtualGenerator(clock);
  const gb = new VirtualGenerator(clock);
  const la = streamLoop(a.stream, ga, runScheduledBlock);
  const lb = streamLoop(b.stream, gb, runScheduledBlock);
  await runUntil(clock, timers, 3000);
  assert.ok(ga.steps.every((s) => s === 4) && gb.steps.every((s) => s === 3), `${ga.steps} / ${gb.steps}`);
  assert.is(a.stream.metrics().missedDeadlines + b.stream.metrics().missedDeadlines, 0);
  const third = runtime.admit(spec('c'));
  const fourth = runtime.admit(spec('d'));
  assert.ok(third.admitted, 'a third stream fits at 2 steps each');
  assert.is(fourth.admitted, false, 'a fourth does not');
  if (third.admitted) third.stream.leave('viewer left');
  b.stream.leave('viewer left');
  await lb.done;
  assert.is(runtime.size, 1);
  assert.throws(() => runtime.scheduler.metrics('b'), /no stream 'b'/);
  assert.ok(decisions.some((d) => d.kind === 'left' && d.streamId === 'b'));
  assert.is(b.stream.metrics().state, 'removed', 'its last figures stay readable');
  assert.ok(b.stream.metrics().framesDelivered > 0);
  await runUntil(clock, timers, 5000);
  assert.is(a.stream.metrics().rung.steps, 4);
  assert.is(runtime.deviceState().streams.length, 1);
  a.stream.leave();
  await la.done;
});

test('a stream the scheduler stops (its device slowed past what even the lowest rung can keep) gets no more turns, with the reason', async () => {
  const { clock, timers, runtime, decisions } = setup();
  const a = runtime.admit(spec('a'));
  const b = runtime.admit(spec('b'));
  assert.ok(a.admitted && b.admitted);
  if (!a.admitted || !b.admitted) return;
  const ga = new VirtualGenerator(clock);
  const gb = new VirtualGenerator(clock);
  const la = streamLoop(a.stream, ga, runScheduledBlock);
  const lb = streamLoop(b.stream, gb, runScheduledBlock);
  await runUntil(clock, timers, 1000);
  // 1.9x: two streams at the lowest rung need 114% of the device; one alone still fits.
  ga.slowdown = gb.slowdown = 1.9;
  await runUntil(clock, timers, 8000);
  await lb.done;
  assert.ok(b.stream.stopReason !== null, 'the later stream was stopped');
  assert.match(b.stream.stopReason!, /cannot keep every deadline even at the lowest rung/);
  assert.ok(decisions.some((d) => d.kind === 'stopped' && d.streamId === 'b'));
  assert.is(a.stream.stopReason, null, 'the earlier one keeps running');
  a.stream.leave();
  await la.done;
});

test('the only stream of a device is never stopped: past what the lowest rung can keep, it runs on at 2 steps and its misses show', async () => {
  const { clock, timers, runtime, decisions } = setup();
  const a = runtime.admit(spec('a'));
  assert.ok(a.admitted);
  if (!a.admitted) return;
  const gen = new VirtualGenerator(clock);
  const loop = streamLoop(a.stream, gen, runScheduledBlock);
  await runUntil(clock, timers, 1000);
  gen.slowdown = 4; // 2 steps = 120 ms for every 100 ms of video
  await runUntil(clock, timers, 4000);
  assert.is(a.stream.stopReason, null);
  assert.not.ok(decisions.some((d) => d.kind === 'stopped'));
  assert.ok(gen.steps.slice(-5).every((s) => s === 2), `${gen.steps.slice(-5)}`);
  assert.ok(runtime.deviceState().speed > 3, 'the speed estimate saw the slowdown');
  assert.ok(a.stream.metrics().missedDeadlines > 0);
  a.stream.leave();
  await loop.done;
});

test('a stream that leaves while its block runs frees the device at once; its late report is ignored', async () => {
  const { clock, timers, runtime } = setup();
  const a = runtime.admit(spec('a'));
  const b = runtime.admit(spec('b'));
  assert.ok(a.admitted && b.admitted);
  if (!a.admitted || !b.admitted) return;
  await runUntil(clock, timers, 0);
  const turn = await a.stream.next();
  assert.ok(turn);
  a.stream.leave('stopped mid-block');
  a.stream.done(turn!, { startedAt: 0, finishedAt: 50 });
  const next = await b.stream.next();
  assert.is(next?.streamId, 'b', 'the device went to the other stream');
  assert.is(await a.stream.next(), null);
  b.stream.leave();
});

test('the runtime forwards whole blocks: one item per job, kind block, predicted as (steps + 1) forwards + decode', async () => {
  const { clock, timers, runtime } = setup({ model: costModel('dev', { decodeOverheadMs: 0, decodePerLatentFrameMs: 2 }) });
  const a = runtime.admit(spec('a'));
  assert.ok(a.admitted);
  if (!a.admitted) return;
  await runUntil(clock, timers, 0);
  const turn = (await a.stream.next())!;
  assert.is(turn.job.items.length, 1);
  assert.is(turn.job.items[0].kind, 'block');
  assert.is(turn.job.decodeLatentFrames, 3);
  assert.is(turn.job.predictedMs, 5 * 10 + 3 * 2);
  a.stream.leave();
});


/** Admits a and b and asks each for its first turn without finishing it: which of them hold one at once. */
async function concurrentTurns(lanes: number) {
  const { clock, timers, runtime } = setup({ lanes });
  const a = runtime.admit(spec('a'));
  const b = runtime.admit(spec('b'));
  assert.ok(a.admitted && b.admitted);
  if (!a.admitted || !b.admitted) throw new Error('unreachable');
  const held: string[] = [];
  void a.stream.next().then((t) => t && held.push('a'));
  void b.stream.next().then((t) => t && held.push('b'));
  await runUntil(clock, timers, 1000);
  return { runtime, a, b, held };
}

test('two lanes (a pipeline of two GPUs): two streams each on a lane at full steps, holding turns at the same time', async () => {
  const two = await concurrentTurns(2);
  // One lane could carry 4 + 3 steps of the two streams (90%); two lanes carry both at 4 steps.
  assert.is(two.a.stream.metrics().rung.steps, 4);
  assert.is(two.b.stream.metrics().rung.steps, 4);
  assert.equal([two.a.decision.device, two.b.decision.device].sort(), ['dev/0', 'dev/1']);
  assert.equal(two.held.sort(), ['a', 'b'], 'both blocks run at once');
  const state = two.runtime.deviceState();
  assert.equal(state.streams.sort(), ['a', 'b']);
  assert.ok(Math.abs(state.utilisation - 0.5) < 1e-9, `mean utilisation over the lanes ${state.utilisation}`);
  // The same streams on one lane: the second is lowered, and only one holds the device at a time.
  const one = await concurrentTurns(1);
  assert.is(one.b.stream.metrics().rung.steps, 3);
  assert.is(one.held.length, 1, `held at once on one lane: ${one.held}`);
  for (const r of [two, one]) r.runtime.close();
});

test('lanes must be a positive integer', () => {
  assert.throws(() => setup({ lanes: 0 }), /lanes must be a positive integer/);
});

test.run();
