import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { finalizeOnSignals } from '../../src/encode/finalize-on-signals.js';
import { readFmp4Layout } from '../../src/encode/fmp4-boxes.js';
import { probeVideo, tempDir, waitFor } from './helpers.js';

const dir = tempDir('signals');
const here = path.dirname(fileURLToPath(import.meta.url));

function startRender(file: string, detached: boolean): { child: ChildProcess; handed: () => number } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'render-child.ts'), file, 'finalize'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const handed = () => Number(out.match(/frame (\d+)\n(?![\s\S]*frame)/)?.[1] ?? 0);
  return { child, handed };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

test('SIGINT to the render: the handler closes the writer, ffmpeg finishes every frame, exit 130', async () => {
  const file = path.join(dir, 'sigint.mp4');
  const { child, handed } = startRender(file, false);
  await waitFor('10 frames', () => (handed() >= 10 ? true : undefined));
  const exited = exitOf(child);
  child.kill('SIGINT');
  assert.equal(await exited, { code: 130, signal: null });
  const layout = readFmp4Layout(fs.readFileSync(file));
  assert.is(layout.types.at(-1), 'mfra', 'the file was finished');
  const n = handed();
  assert.ok(layout.samples === n || layout.samples === n + 1, `${layout.samples} frames in the file, ${n} handed`);
  assert.is((await probeVideo(file)).frames, layout.samples);
});

test('Ctrl-C to the whole process group (ffmpeg gets it too): the file is still finished', async () => {
  const file = path.join(dir, 'ctrl-c.mp4');
  const { child, handed } = startRender(file, true);
  await waitFor('10 frames', () => (handed() >= 10 ? true : undefined));
  const exited = exitOf(child);
  process.kill(-child.pid!, 'SIGINT');
  assert.equal(await exited, { code: 130, signal: null });
  const layout = await waitFor('the trailer', () => {
    const l = readFmp4Layout(fs.readFileSync(file));
    return l.types.at(-1) === 'mfra' ? l : undefined;
  });
  assert.ok(layout.samples > 0 && layout.samples <= handed() + 1);
  assert.is((await probeVideo(file)).frames, layout.samples);
});

test('the handler exits with 128 + signal after close, also when close fails; dispose removes it', async () => {
  const before = process.listenerCount('SIGTERM');
  const statuses: number[] = [];
  const lines: string[] = [];
  let closes = 0;
  const dispose = finalizeOnSignals(
    { close: async () => void closes++, path: 'x.mp4' },
    { signals: ['SIGTERM'], exit: (s) => statuses.push(s), log: (l) => lines.push(l) },
  );
  assert.is(process.listenerCount('SIGTERM'), before + 1);
  process.emit('SIGTERM', 'SIGTERM');
  await waitFor('exit', () => (statuses.length ? true : undefined), 1000);
  assert.equal(statuses, [143]);
  assert.is(closes, 1);
  assert.match(lines[0], /finishing x\.mp4/);
  assert.is(process.listenerCount('SIGTERM'), before, 'one-shot: a second signal gets the default action');

  const failing = finalizeOnSignals(
    { close: async () => Promise.reject(new Error('disk full')) },
    { signals: ['SIGTERM'], exit: (s) => statuses.push(s), log: (l) => lines.push(l) },
  );
  process.emit('SIGTERM', 'SIGTERM');
  await waitFor('exit', () => (statuses.length === 2 ? true : undefined), 1000);
  assert.equal(statuses, [143, 143]);
  assert.match(lines.at(-1)!, /disk full/);
  failing();
  dispose();
  assert.is(process.listenerCount('SIGTERM'), before);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
