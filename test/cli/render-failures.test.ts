/**
 * `sinkstream render` when something is wrong: an output path that cannot be written, a disk that
 * fails, Ctrl-C reaching ffmpeg too. The real CLI in a child process with a deadline: a render that
 * hangs fails the test (and is killed) instead of blocking the suite.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeVideo, tempDir, waitFor } from '../encode/helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const entry = path.join(root, 'src/cli/run.ts');
/** Far beyond a failing render's start-up on a busy machine; a render that hangs is killed at this point. */
const EXIT_DEADLINE_MS = 90_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface CliOptions {
  /** Runs the CLI as this user (tests of permissions, which root does not have). */
  uid?: number;
  /** Its own process group, so that a signal can reach it and its ffmpeg together, as Ctrl-C does. */
  group?: boolean;
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

/** Runs the CLI; rejects if it has not exited by the deadline (after killing it). */
function cli(args: string[], options: CliOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', ...(options.uid !== undefined ? { HOME: fs.mkdtempSync('/tmp/sinkstream-home-') } : {}) },
      ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}),
      detached: options.group ?? false,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const deadline = setTimeout(() => {
      if (options.group) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
      reject(new Error(`sinkstream ${args.join(' ')} did not exit within ${EXIT_DEADLINE_MS / 1000} s; stderr:\n${stderr}`));
    }, EXIT_DEADLINE_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(deadline);
      resolve({ code, signal, stdout, stderr });
    });
    options.onSpawn?.(child);
  });
}

const render = (out: string, extra: string[] = []) => cli(['render', '--frames', '40', '--no-progress', '--out', out, ...extra]);

test('--out in a folder that does not exist: exit 2 at once, naming --out and the folder', async () => {
  const run = await render('/nonexistent-dir/x/out.mp4');
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /--out \/nonexistent-dir\/x\/out\.mp4: the folder \/nonexistent-dir\/x does not exist/);
  assert.match(run.stderr, /ERR_ARGUMENT/);
  assert.not.ok(fs.existsSync('/nonexistent-dir'));
});

test('--out naming a folder: exit 2 at once, nothing written in it', async () => {
  const dir = tempDir('out-folder');
  const run = await render(dir);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /--out .*: is a folder; expected a file path/);
  assert.equal(fs.readdirSync(dir), []);
});

test('output.path from the configuration is named as output.path', async () => {
  const dir = tempDir('out-key');
  const run = await cli(['render', '--frames', '40', '--no-progress', '--set', `output.path=${dir}`]);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /output\.path .*: is a folder/);
});

test('--out in a folder the user cannot write to: exit 2 at once, nothing written', async () => {
  const dir = tempDir('out-readonly');
  // Root writes anywhere: as root, run the render as user nobody in root's folder; otherwise, as
  // ourselves in a folder we took the write permission from.
  const asRoot = process.getuid?.() === 0;
  fs.chmodSync(dir, asRoot ? 0o755 : 0o555);
  const asNobody = await cli(['render', '--frames', '40', '--no-progress', '--out', path.join(dir, 'x.mp4')], asRoot ? { uid: 65534 } : {});
  assert.is(asNobody.code, 2, asNobody.stderr);
  assert.match(asNobody.stderr, /--out .*x\.mp4: cannot create a file in .* \(EACCES\)/);
  assert.equal(fs.readdirSync(dir), []);
});

test('--out /dev/full (the disk fails): exit 1 with the encoder error, at once', async () => {
  const run = await render('/dev/full');
  assert.is(run.code, 1, run.stderr);
  assert.match(run.stderr, /ERR_ENCODER/);
  assert.match(run.stderr, /No space left on device/);
});

test('Ctrl-C reaching render and its ffmpeg together: the summary counts the frames the file holds', async () => {
  const out = path.join(tempDir('ctrl-c'), 'interrupted.mp4');
  let child: ReturnType<typeof spawn> | undefined;
  const done = cli(['render', '--frames', '100000', '--out', out, '--no-progress'], { group: true, onSpawn: (c) => (child = c) });
  await waitFor('fragments on disk', () => (fs.existsSync(out) && fs.statSync(out).size > 4000 ? true : undefined), 60_000);
  process.kill(-child!.pid!, 'SIGINT'); // the terminal's Ctrl-C: the whole foreground process group
  const run = await done;
  assert.is(run.code, 130, run.stderr);
  const counted = Number(/interrupted after (\d+) frames/.exec(run.stdout)?.[1]);
  const video = await probeVideo(out);
  assert.ok(video.frames > 0, 'frames decode');
  assert.is(counted, video.frames, run.stdout);
});

test.run();
