import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { demandBound, edfFeasible, type PeriodicLoad } from '../../scheduler/feasibility.js';

const load = (id: string, periodMs: number, costMs: number, deadlineMs: number, longestUnitMs = 0): PeriodicLoad => ({ id, periodMs, costMs, deadlineMs, longestUnitMs });

test('no loads are feasible', () => {
  assert.equal(edfFeasible([], 0.9), { feasible: true, utilisation: 0 });
});

test('utilisation above the capacity fails with the figures in the reason', () => {
  const r = edfFeasible([load('a', 100, 50, 1000), load('b', 100, 45, 1000)], 0.9);
  assert.is(r.feasible, false);
  if (r.feasible) return;
  assert.is(r.reason, 'utilisation');
  assert.match(r.detail, /0\.95.*0\.90/);
});

test('a deadline shorter than the work fails although utilisation is low', () => {
  const r = edfFeasible([load('a', 1000, 100, 80)], 1);
  assert.is(r.feasible, false);
  if (r.feasible) return;
  assert.is(r.reason, 'deadline');
  assert.is(r.atMs, 80);
});

test('the blocking of one non-preemptive unit counts: a deadline that fits the work alone fails with it', () => {
  assert.is(edfFeasible([load('a', 1000, 100, 120, 10), load('b', 1000, 10, 1000, 30)], 1).feasible, false);
  assert.is(edfFeasible([load('a', 1000, 100, 130, 10), load('b', 1000, 10, 1000, 30)], 1).feasible, true);
});

test('demand bound counts every job due by t, deadlines longer than periods included', () => {
  const loads = [load('a', 100, 10, 250), load('b', 50, 5, 50)];
  assert.is(demandBound(loads, 249), 4 * 5);
  assert.is(demandBound(loads, 250), 10 + 5 * 5);
  assert.is(demandBound(loads, 350), 2 * 10 + 7 * 5);
});

test('a feasible set: EDF with deadlines longer than a period', () => {
  const r = edfFeasible([load('a', 750, 400, 700, 80), load('b', 750, 250, 1000, 80)], 0.9);
  assert.is(r.feasible, true);
  assert.ok(Math.abs(r.utilisation - 650 / 750) < 1e-12);
});

test.run();
