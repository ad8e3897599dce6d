/**
 * tools/train/run-parallel.sh: the commands run at once, each with its own RUN_OUT; a run's
 * model.safetensors comes back as NAME.safetensors and the rest of what it wrote as NAME.tar.gz, its
 * output (NAME.log while it runs) inside the archive as run-parallel.log and its last lines on stdout, so
 * that a run leaves two files; the exit status counts the runs that failed; bad arguments exit 2.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const script = path.join(root, 'tools/train/run-parallel.sh');

function run(out: string, args: string[]) {
  return spawnSync('bash', [script, ...args], { env: { ...process.env, OUT: out }, encoding: 'utf8' });
}

test('runs each command in its own folder, gathers its files, counts the failures', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'run-parallel-'));
  try {
    const r = run(out, [
      'first', 'echo weights > $RUN_OUT/model.safetensors; echo "{}" > $RUN_OUT/metrics.json; echo said first',
      'second', 'echo said second; touch $RUN_OUT/loss.json; exit 3',
    ]);
    assert.is(r.status, 1, r.stderr);
    assert.is(fs.readFileSync(path.join(out, 'first.safetensors'), 'utf8'), 'weights\n');
    assert.not.ok(fs.existsSync(path.join(out, 'second.safetensors')));
    assert.equal(fs.readdirSync(out).sort(), ['first.safetensors', 'first.tar.gz', 'parallel.txt', 'second.tar.gz']);
    const listing = (name: string) =>
      spawnSync('tar', ['tzf', path.join(out, `${name}.tar.gz`)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    assert.ok(listing('first').includes('./metrics.json'), listing('first').join(' '));
    assert.not.ok(listing('first').includes('./model.safetensors'));
    assert.ok(listing('second').includes('./loss.json'));
    const output = (name: string) =>
      spawnSync('tar', ['xzOf', path.join(out, `${name}.tar.gz`), './run-parallel.log'], { encoding: 'utf8' }).stdout;
    assert.is(output('first'), 'said first\n');
    assert.is(output('second'), 'said second\n');
    assert.match(r.stdout, 'first: said first');
    assert.match(r.stdout, 'second: said second');
    const summary = fs.readFileSync(path.join(out, 'parallel.txt'), 'utf8');
    assert.match(summary, /end first: rc=0/);
    assert.match(summary, /end second: rc=3/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('bad arguments exit 2 and run nothing', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'run-parallel-'));
  try {
    const r = run(out, ['only-a-name']);
    assert.is(r.status, 2);
    assert.match(r.stderr, 'usage');
    assert.equal(fs.readdirSync(out), []);
    const noOut = spawnSync('bash', [script, 'a', 'true'], { env: { ...process.env, OUT: '' }, encoding: 'utf8' });
    assert.is.not(noOut.status, 0);
    assert.match(noOut.stderr, 'OUT');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test.run();
