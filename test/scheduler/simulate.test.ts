import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runScenarios, type ScenarioResult } from '../../scheduler/simulate.js';
import { formatScenarioTable } from '../../scheduler/report.js';
import { SCENARIOS, type SchedulerScenario } from '../../scheduler/scenarios.js';

const report = runScenarios({ perStream: true });
const byName = new Map(report.scenarios.map((s) => [s.name, s]));
const get = (name: string): ScenarioResult => {
  const s = byName.get(name);
  assert.ok(s, `scenario ${name}`);
  return s!;
};

test('every scenario reports the fields `simulate --json` promises', () => {
  assert.ok(report.scenarios.length >= 9);
  for (const s of report.scenarios) {
    for (const key of ['name', 'admitted', 'refused', 'missedDeadlines', 'framesDelivered', 'p99LatencyMs'] as const) {
      assert.ok(key in s, `${s.name}.${key}`);
    }
    assert.ok(s.framesDelivered > 0, s.name);
  }
});

test('capacity to spare: no deadline is missed, no stream refused, first frames within the objective', () => {
  for (const name of ['steady', 'burst', 'priority']) {
    const s = get(name);
    assert.is(s.refused, 0, name);
    assert.is(s.stopped, 0, name);
    assert.is(s.missedDeadlines, 0, name);
    assert.ok(s.ttffMet, name);
    const scenario = SCENARIOS.find((x) => x.name === name) as SchedulerScenario;
    for (const m of s.streams!) {
      const spec = scenario.arrivals.find((a) => a.spec.id === m.streamId)!.spec;
      assert.is(m.framesDelivered, spec.durationFrames, `${name}/${m.streamId}: every frame delivered`);
    }
  }
  const steady = get('steady');
  assert.is(steady.admitted, 3);
  assert.is(steady.framesDelivered, 3 * 40 * 16);
  const burst = get('burst');
  assert.is(burst.admitted, 8);
  assert.is(burst.framesDelivered, 2 * 35 * 16 + 6 * 25 * 16);
});

test('overload: steps are lowered before any refusal, then new streams are refused with a reason, and admitted streams keep their deadlines', () => {
  const s = get('overload');
  assert.ok(s.stepsLowered > 0);
  assert.ok(s.refused > 0);
  assert.ok(s.admitted > 0);
  assert.is(s.admitted + s.refused, 8);
  assert.is(s.missedDeadlines, 0);
  assert.is(s.stopped, 0);
  // Arrivals are in order: every refusal comes after every admission (lowering came first).
  const lastAdmitted = Math.max(...s.streams!.map((m) => Number(m.streamId.slice(1))));
  const firstRefused = Math.min(...s.refusals.map((r) => Number(r.streamId.slice(1))));
  assert.ok(firstRefused > lastAdmitted);
  // Refused only because even the lowest rung would not fit.
  for (const r of s.refusals) {
    assert.is(r.code, 'capacity');
    assert.match(r.reason, /even at 2 steps/);
    assert.match(r.reason, /at the lowest rung/);
  }
  assert.is(s.framesDelivered, s.admitted * 30 * 16);
});

test('slowdown: the slowed device\'s streams are lowered, none is stopped, no deadline missed, a later stream is refused', () => {
  const s = get('slowdown');
  assert.ok(s.stepsLowered > 0);
  assert.is(s.stopped, 0);
  assert.is(s.missedDeadlines, 0);
  assert.equal(s.refusals.map((r) => r.streamId), ['late']);
});

test('priority: the high-priority stream keeps 4 steps, the low-priority one gives way', () => {
  const s = get('priority');
  const high = s.streams!.find((m) => m.streamId === 'high')!;
  const low = s.streams!.find((m) => m.streamId === 'low')!;
  assert.equal(Object.keys(high.blocksBySteps), ['4']);
  assert.ok((low.blocksBySteps['2'] ?? 0) + (low.blocksBySteps['3'] ?? 0) > 0);
});

test('pipeline: near-linear throughput at 2 and 4 GPUs; a drifting GPU is rebalanced', () => {
  const one = get('pipeline-1');
  const two = get('pipeline-2');
  const four = get('pipeline-4');
  assert.is(one.speedup, 1);
  assert.ok(two.speedup! >= 1.7, `2 GPUs: ${two.speedup}`);
  assert.ok(four.speedup! >= 3, `4 GPUs: ${four.speedup}`);
  for (const s of [one, two, four]) assert.ok(Math.min(...s.stageUtilisation!) > 0.85, `${s.name}: ${s.stageUtilisation}`);
  const drift = get('pipeline-4-drift');
  assert.ok(drift.rebalances! >= 1);
  const [start, end] = drift.split![2];
  assert.ok(end - start < 30 / 4, `the slowed GPU keeps ${end - start} layers`);
});

test('the same results on every run', () => {
  assert.is(JSON.stringify(runScenarios({ perStream: true })), JSON.stringify(report));
});

test('the table has a row per scenario and names every refusal', () => {
  const table = formatScenarioTable(report.scenarios);
  const lines = table.split('\n');
  assert.match(lines[0], /^scenario\s+gpus\s+admitted\s+refused/);
  for (const s of report.scenarios) assert.ok(lines.some((l) => l.startsWith(s.name + ' ')), s.name);
  assert.match(table, /overload: refused s\d at/);
});

test.run();
