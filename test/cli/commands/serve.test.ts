/**
 * `sinkstream serve` end to end: the real CLI in a child process prints how to open the page with
 * the token, serves a recorded stream, and on SIGTERM stops it cleanly: viewers are told, the
 * recording is finalized (a playable H.264 file), the process exits 0.
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

test('serve: prints how to pass the token; SIGTERM stops the stream and finalizes its recording', async () => {
  const recordDir = tempDir('serve-rec');
  // 4 fps: the stream must be admitted however busy this shared machine is (16 fps may not fit).
  const child = serve(['--port', '0', '--set', `serve.recordDir=${recordDir}`, '--set', 'scheduler.targetFps=4'], { SINKSTREAM_TOKEN: TOKEN });
  const { out, exited } = collect(child);
  try {
    const base = await until('the listening line', () => /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out.stdout)?.[1]);
    assert.ok(out.stdout.includes(`#token=${TOKEN}`), out.stdout);
    assert.match(out.stdout, /Authorization: Bearer <token>/);
    assert.match(out.stdout, /SINKSTREAM_TOKEN/);
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}api/streams`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a red circle', record: true }) });
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
    assert.match(out.stderr, /SIGTERM: stopping streams/);
    assert.match(out.stderr, /recorded \d+ frames/);
    assert.is(await wsClosed, 1001);
    assert.ok(texts.some((m) => m.type === 'ended' && /SIGTERM/.test(m.reason ?? '')), JSON.stringify(texts.slice(-3)));
    const video = await probeVideo(recording);
    assert.is(video.codec, 'h264');
    assert.is(video.width, 64);
    const recorded = Number(/recorded (\d+) frames/.exec(out.stderr)![1]);
    assert.ok(recorded >= 8);
    assert.is(video.frames, recorded, 'every frame handed to the recording is in the file');
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
