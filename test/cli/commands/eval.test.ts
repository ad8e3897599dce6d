/** `sinkstream eval` and the demo vocabulary through the real CLI in a child process. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const entry = path.join(root, 'src/cli/run.ts');
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });

test('eval --json: one second of one preset, report on stdout and files in --out', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-eval-cli-'));
  const run = cli(['eval', '--seconds', '1', '--policies', 'self-forcing-window', '--prompts', 'a yellow triangle bouncing on a dark blue background', '--out', out, '--json']);
  assert.is(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.is(report.policies[0].policy, 'self-forcing-window');
  assert.ok(existsSync(path.join(out, 'results.md')) && existsSync(path.join(out, 'speed.png')));
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
