/** `sinkstream eval` and the demo vocabulary through the real CLI in a child process. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { heldOutPrompts } from '../../../src/eval/prompt-sets.js';
import { loadSceneSpec } from '../../../src/scene/scene-spec.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const entry = path.join(root, 'src/cli/run.ts');
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });

test('eval --json: one second of one preset, report on stdout and files in --out', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-eval-cli-'));
  const run = cli(['eval', '--seconds', '1', '--policies', 'self-forcing-window', '--prompts', 'a yellow triangle bouncing on a dark blue background', '--seeds', '0', '--out', out, '--json', '--prime']);
  assert.is(run.status, 0, run.stderr);
  assert.match(readFileSync(path.join(out, 'results.md'), 'utf8'), /first generated second after the 3 primed frames/, '--prime gives the first block');
  const report = JSON.parse(run.stdout);
  assert.is(report.policies[0].policy, 'self-forcing-window');
  assert.is(report.promptSet, 'given with --prompts');
  assert.is(report.baseCachePreset, 'streamingllm-sink');
  assert.equal(Object.keys(report.targets[0]).sort(), ['allMet', 'borderSharpness', 'colourFidelity', 'openingPresent', 'policy', 'speed']);
  assert.ok(existsSync(path.join(out, 'results.md')) && existsSync(path.join(out, 'speed.png')) && existsSync(path.join(out, 'borderSharpness.png')));
});

test('eval --prompt-set held-out draws held-out captions and says so; the targets block is in results.md', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-eval-cli-'));
  const run = cli(['eval', '--seconds', '1', '--policies', 'longlive-sink', '--prompt-set', 'held-out', '--prompt-count', '1', '--seeds', '0', '--out', out, '--json']);
  assert.is(run.status, 0, run.stderr);
  assert.match(JSON.parse(run.stdout).promptSet, /^held-out \(1 drawn/);
  const { meta } = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(meta.prompts, heldOutPrompts(loadSceneSpec(), 1));
  const md = readFileSync(path.join(out, 'results.md'), 'utf8');
  assert.match(md, /prompt set: held-out/);
  assert.match(md, /## Targets[\s\S]*\| longlive-sink \| (0|1)\.00 (met|not met) \|/);
  // the default configuration opens from noise, so by default the evaluation does too
  assert.match(md, /opening = the first second of video \(frames 0\.\.15\)/);
  assert.match(meta.primed, /^no/);
});

test('a bad --prompt-set or --prompt-count is bad input (exit 2), naming the flag', () => {
  const a = cli(['eval', '--seconds', '1', '--prompt-set', 'nope']);
  assert.is(a.status, 2);
  assert.match(a.stderr, /--prompt-set nope: expected one of held-out, fixed/);
  const b = cli(['eval', '--seconds', '1', '--prompt-count', '0']);
  assert.is(b.status, 2);
  assert.match(b.stderr, /--prompt-count 0/);
  const c = cli(['eval', '--seconds', '1', '--jobs', 'two']);
  assert.is(c.status, 2);
  assert.match(c.stderr, /--jobs two: expected a positive integer/);
});

test('an unknown preset and a prompt outside the grammar are bad input (exit 2)', () => {
  const a = cli(['eval', '--seconds', '1', '--policies', 'nope']);
  assert.is(a.status, 2);
  assert.match(a.stderr, /no preset 'nope'.*longlive-sink/s);
  const b = cli(['eval', '--seconds', '1', '--prompts', 'a red circle']);
  assert.is(b.status, 2);
  assert.match(b.stderr, /training grammar/);
});

test('a word outside the demo vocabulary is refused with the vocabulary listed (exit 2)', () => {
  const run = cli(['render', '--prompt', 'a red hexagon bouncing on a dark green background', '--frames', '3', '--out', path.join(os.tmpdir(), 'never.mp4')]);
  assert.is(run.status, 2);
  assert.match(run.stderr, /'hexagon' is not in the vocabulary/);
  assert.match(run.stderr, /a, and, bouncing, on, background, dark, red, green, blue, yellow, magenta, cyan, white, circle, square, triangle, gray, purple, black/);
});

test.run();
