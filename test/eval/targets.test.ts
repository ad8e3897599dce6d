/** The targets block (issue 16): measured value and met / not met per policy, from crafted results. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildReport, evalWindow, targetsTable } from '../../src/eval/report.js';
import { METRIC_KEYS, type SecondMetrics } from '../../src/eval/metrics.js';
import { presetOfBaseCache, type RunResult } from '../../src/eval/run-eval.js';

/** A run whose metrics are `early` for the first half of its seconds and `late` after. */
function run(policy: string, seconds: number, present: boolean, early: Partial<SecondMetrics>, late: Partial<SecondMetrics>, fromFrame = 0): RunResult {
  const base = Object.fromEntries(METRIC_KEYS.map((k) => [k, 1])) as unknown as SecondMetrics;
  return {
    policy,
    prompt: 'a yellow triangle bouncing on a dark blue background',
    seed: 0,
    generationFps: 10,
    seconds: Array.from({ length: seconds }, (_, s) => ({ ...base, ...(s < seconds / 2 ? early : late), second: s, frames: 16 })),
    opening: { fromFrame, frames: 16, colourShares: { yellow: present ? 1 : 0 }, present },
    stills: [],
  };
}

const good = { colourFidelity: 0.9, speedRatio: 1.1, borderSharpness: 60 };
const keeps = { colourFidelity: 0.8, speedRatio: 0.8, borderSharpness: 50 };
const fades = { colourFidelity: 0.3, speedRatio: 0.5, borderSharpness: 20 };

test('met / not met per target, with the measured values', () => {
  const results = [
    ...[true, true, true, true, true].map((p) => run('keeper', 60, p, good, keeps)),
    ...[true, true, true, false, false].map((p) => run('fader', 60, p, good, fades)),
  ];
  const report = buildReport(results, 60);
  assert.is(report.windowSeconds, 10);
  const [keeper, fader] = report.targets;
  assert.is(keeper.policy, 'keeper');
  assert.is(keeper.openingPresent.value, 1);
  assert.ok(Math.abs(keeper.colourFidelity.value - 0.8 / 0.9) < 1e-9);
  assert.ok(Math.abs(keeper.speed.value - 0.8) < 1e-9);
  assert.ok(Math.abs(keeper.borderSharpness.value - 50 / 60) < 1e-9);
  assert.ok(keeper.openingPresent.met && keeper.colourFidelity.met && keeper.speed.met && keeper.borderSharpness.met && keeper.allMet);
  assert.is(fader.openingPresent.value, 0.6);
  assert.not.ok(fader.openingPresent.met || fader.colourFidelity.met || fader.speed.met || fader.borderSharpness.met || fader.allMet);
  const md = targetsTable(report);
  assert.match(md, /\| keeper \| 1\.00 met \| 0\.89 met \| 0\.80 met \| 0\.83 met \| yes \|/);
  assert.match(md, /\| fader \| 0\.60 not met \| 0\.33 not met \| 0\.50 not met \| 0\.33 not met \| no \|/);
  assert.match(md, /early = first 10 s, late = last 10 s/);
  assert.match(md, /needs --seconds 300/);
  assert.match(md, /opening = the first second of video \(frames 0\.\.15\)/);
});

test('speed too fast, an unmeasurable border (NaN) and the 5-minute line', () => {
  const report = buildReport([run('fast', 300, true, good, { ...keeps, speedRatio: 1.3, borderSharpness: Number.NaN })], 300);
  const [t] = report.targets;
  assert.not.ok(t.speed.met, 'speed 1.3x the training mean is outside 25%');
  assert.ok(Number.isNaN(t.borderSharpness.value));
  assert.not.ok(t.borderSharpness.met);
  const md = targetsTable(report);
  assert.match(md, /n\/a not met/);
  assert.match(md, /holding colour fidelity, speed and border sharpness over 300 s: none/);
  const ok = buildReport([run('holds', 300, false, good, keeps)], 300);
  assert.match(targetsTable(ok), /over 300 s: holds\./, 'the long-horizon line does not need the opening');
});

test('short runs use their first and last quarter and say so; a primed opening is named', () => {
  assert.equal(evalWindow(60).windowSeconds, 10);
  assert.equal(evalWindow(20).windowSeconds, 10);
  assert.equal(evalWindow(12).windowSeconds, 3);
  assert.equal(evalWindow(1).windowSeconds, 1);
  const report = buildReport([run('p', 8, true, good, keeps, 3)], 8);
  assert.is(report.windowSeconds, 2);
  const md = targetsTable(report);
  assert.match(md, /shorter than 20 s: early = first quarter, late = last quarter \(2 s each\)/);
  assert.match(md, /first generated second after the 3 primed frames \(frames 3\.\.18\)/);
  assert.ok(Math.abs(report.targets[0].colourFidelity.value - 0.8 / 0.9) < 1e-9);
});

test('the block names the preset whose cache is the base configuration\'s (the targets\' default configuration)', () => {
  assert.is(presetOfBaseCache({}), 'streamingllm-sink');
  assert.is(presetOfBaseCache({ set: ['cache.positions=absolute'] }), 'longlive-sink');
  assert.is(presetOfBaseCache({ set: ['cache.window=15'] }), undefined);
  const report = buildReport([run('longlive-sink', 60, true, good, keeps)], 60);
  assert.match(targetsTable(report, 'longlive-sink'), /base configuration's cache is the longlive-sink preset/);
  assert.match(targetsTable(report), /No preset has the base configuration's cache/);
});

test.run();
