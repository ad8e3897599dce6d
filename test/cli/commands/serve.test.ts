/**
 * `sinkstream serve` end to end: the real CLI in a child process prints how to open the page with
 * the token, serves a recorded stream, and on SIGTERM drains: the stream goes on for
 * serve.drainSeconds, then stops cleanly (viewers are told, the recording is finalized: a playable
 * H.264 file) and the process exits 0; a second SIGTERM stops at once. Logs are JSON lines on stderr.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { probeVideo, tempDir } from '../../encode/helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const entry = path.join(root, 'src/cli/run.ts');
const TOKEN = 'cli-test-token-42';

function serve(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', entry, 'serve', ...args], {
    cwd: root,
    env: { ...process.env, FORCE_COLOR: '0', SINKSTREAM_TOKEN: '', ...env },
  });
}

function collect(child: ChildProcessWithoutNullStreams) {
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { out, exited };
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** stderr's JSON log lines. */
function logEntries(stderr: string): Array<Record<string, any>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

test('serve: prints how to pass the token; SIGTERM drains: the stream stops after the grace, its recording finalized, exit 0', async () => {
  const recordDir = tempDir('serve-rec');
  // 4 fps: the stream must be admitted however busy this shared machine is (16 fps may not fit).
  const child = serve(['--port', '0', '--set', `serve.recordDir=${recordDir}`, '--set', 'scheduler.targetFps=4', '--set', 'serve.drainSeconds=1'], { SINKSTREAM_TOKEN: TOKEN });
  const { out, exited } = collect(child);
  try {
    const base = await until('the listening line', () => /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out.stdout)?.[1]);
    // the lines after it may come in a later chunk of the pipe: wait for the last one
    await until('the start-up lines', () => (/\n {2}stop: .*\n/.test(out.stdout) ? true : undefined));
    assert.ok(out.stdout.includes(`#token=${TOKEN}`), out.stdout);
    assert.match(out.stdout, /Authorization: Bearer <token>/);
    assert.match(out.stdout, /SINKSTREAM_TOKEN/);
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}api/streams`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a red circle bouncing on a black background', record: true }) });
    assert.is(created.status, 201);
    const { stream } = (await created.json()) as { stream: { id: string; recording: string } };
    assert.is(stream.recording, `${stream.id}.mp4`, 'the file name, not the server\'s path');
    const recording = path.join(recordDir, stream.recording);

    const ws = new WebSocket(`${base.replace('http', 'ws')}ws?v=1&token=${TOKEN}`);
    const texts: Array<{ type: string; reason?: string }> = [];
    let fragments = 0;
    ws.on('message', (d, binary) => (binary ? fragments++ : texts.push(JSON.parse(d.toString()))));
    const wsClosed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'watch', stream: stream.id }));
    await until('a few fragments', () => (fragments >= 8 ? true : undefined));

    child.kill('SIGTERM');
    const exit = await exited;
    assert.is(exit.code, 0, out.stderr);
    const log = logEntries(out.stderr);
    assert.ok(log.some((e) => e.event === 'signal' && e.signal === 'SIGTERM'), out.stderr);
    assert.ok(log.some((e) => e.event === 'drain-started' && e.streams === 1 && e.graceSeconds === 1), out.stderr);
    assert.ok(log.some((e) => e.event === 'drain-finished' && e.how === 'grace-over'), out.stderr);
    assert.is(await wsClosed, 1001);
    assert.ok(texts.some((m) => m.type === 'ended' && /drain/.test(m.reason ?? '')), JSON.stringify(texts.slice(-3)));
    const video = await probeVideo(recording);
    assert.is(video.codec, 'h264');
    assert.is(video.width, 64);
    const recorded = log.find((e) => e.event === 'recording-finalised' && e.stream === stream.id)!.frames as number;
    assert.ok(recorded >= 8);
    assert.is(video.frames, recorded, 'every frame handed to the recording is in the file');
    assert.is(log.at(-1)!.event, 'stopped');
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(recordDir, { recursive: true, force: true });
  }
});

test('serve: a second SIGTERM during the drain stops the stream at once, recording finalized, exit 0', async () => {
  const recordDir = tempDir('serve-rec2');
  const child = serve(['--port', '0', '--set', `serve.recordDir=${recordDir}`, '--set', 'scheduler.targetFps=4', '--set', 'serve.drainSeconds=600'], { SINKSTREAM_TOKEN: TOKEN });
  const { out, exited } = collect(child);
  try {
    const base = await until('the listening line', () => /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out.stdout)?.[1]);
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}api/streams`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a red circle bouncing on a black background', record: true }) });
    assert.is(created.status, 201);
    const { stream } = (await created.json()) as { stream: { id: string; recording: string } };
    await until('a few frames', async () => {
      const one = (await (await fetch(`${base}api/streams/${stream.id}`, { headers })).json()) as { figures: { frames: number } };
      return one.figures.frames >= 4 ? true : undefined;
    });
    child.kill('SIGTERM');
    await until('the drain', () => (logEntries(out.stderr).some((e) => e.event === 'drain-started') ? true : undefined));
    const ready = await fetch(`${base}readyz`);
    assert.is(ready.status, 503);
    assert.is(((await ready.json()) as { reason: string }).reason, 'draining');
    child.kill('SIGTERM');
    const exit = await exited;
    assert.is(exit.code, 0, out.stderr);
    const log = logEntries(out.stderr);
    assert.ok(log.some((e) => e.event === 'stream-ended' && /SIGTERM/.test(e.reason)), out.stderr);
    const recorded = log.find((e) => e.event === 'recording-finalised')!.frames as number;
    assert.is((await probeVideo(path.join(recordDir, stream.recording))).frames, recorded);
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(recordDir, { recursive: true, force: true });
  }
});

test('serve: refuses to listen beyond loopback without a token (exit 2)', async () => {
  const child = serve(['--host', '0.0.0.0', '--port', '0']);
  const { out, exited } = collect(child);
  const exit = await exited;
  assert.is(exit.code, 2);
  assert.match(out.stderr, /set a token first/);
  assert.match(out.stderr, /SINKSTREAM_TOKEN/);
});

test.run();
