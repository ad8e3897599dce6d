/**
 * The server's memory under hostile load, and whether it is given back: starts `sinkstream serve` in
 * a child process on 127.0.0.1 (any free port), runs bounded attacks against it, and prints its
 * resident memory (RSS, from /proc) when idle, at the peak of each attack, and after the attacks.
 *
 *   node --import tsx tools/bench/serve-memory.ts [--phases a,b,...] [--idle-connections 5000]
 *        [--viewers 200] [--settle 20] [--set key=value ...]
 *
 * Phases (all by default, in this order): malformed (30 kinds of bad message on 20 connections),
 * big-frames (5 WebSocket frames of 50 MB), big-posts (5 HTTP bodies of 50 MB with a length, 5
 * chunked), flood (10k messages on a connection that never reads), creates (1000 creates at once,
 * then every stream stopped), viewers (one stream, `--viewers` connections watching, half of them
 * never reading, for 10 s), idle-connections (`--idle-connections` TCP connections that send nothing,
 * held 10 s). Linux only (reads /proc/<pid>/status). Streams run at a 4 fps objective (so that they
 * are admitted however busy the machine is; `--set scheduler.targetFps=16` for the default's).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const ALL = ['malformed', 'big-frames', 'big-posts', 'flood', 'creates', 'viewers', 'idle-connections'];
const phases = option('--phases', ALL.join(',')).split(',');
const idleConnections = Number(option('--idle-connections', '5000'));
const viewerCount = Number(option('--viewers', '200'));
const settleSeconds = Number(option('--settle', '20'));
const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? ['--set', a] : []));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1 << 20;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/run.ts'), 'serve', '--host', '127.0.0.1', '--port', '0', '--set', 'serve.idleStopSeconds=0', '--set', 'scheduler.targetFps=4', ...set], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
});
let stderr = '';
child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
const port = await new Promise<number>((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
    if (m) resolve(Number(m[1]));
  });
  child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
});

function rssMb(): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}
let peak = 0;
let phasePeak = 0;
const sampler = setInterval(() => {
  const r = rssMb();
  peak = Math.max(peak, r);
  phasePeak = Math.max(phasePeak, r);
}, 100);

const base = `http://127.0.0.1:${port}`;
const wsUrl = `ws://127.0.0.1:${port}/ws?v=1`;
const prompt = 'a red circle and a blue square bouncing on a dark green background';

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', () => reject(new Error('refused')));
  });
}
const closeAll = (sockets: WebSocket[]) => sockets.forEach((s) => s.terminate());

async function api(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + p, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json().catch(() => null) };
}
async function stopAllStreams(): Promise<void> {
  const { body } = await api('GET', '/api/streams');
  await Promise.all((body.streams as Array<{ id: string }>).map((s) => api('DELETE', `/api/streams/${s.id}`)));
}

function post(bytes: number, chunked: boolean): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(`${base}/api/streams`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(chunked ? {} : { 'content-length': bytes }) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => resolve());
    const chunk = Buffer.alloc(MB, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

const attacks: Record<string, () => Promise<void>> = {
  async malformed() {
    const bad = [
      '', 'x', '{', '[]', 'null', '42', '"s"', '{}', '{"type":1}', '{"type":"nope"}', '{"type":"create"}', '{"type":"create","prompt":""}',
      '{"type":"create","prompt":"a","overrides":{"model":{}}}', '{"type":"watch","stream":"../../etc"}', '{"type":"watch"}', '{"type":"prompt","stream":"x"}',
      '{"type":"retune","stream":"x","cache":{"window":-1}}', '{"type":"stop","stream":"x"}', '{"type":"ping","req":-1}', '{"type":"ping","req":1e99}',
      '{"type":"ping","extra":1}', '\u0000\u0001', '\uffff', '{"type":"list","req":"1"}', '{"__proto__":{"x":1},"type":"ping"}', `{"type":"create","prompt":"${'a'.repeat(3000)}"}`,
      '{"type":"unwatch","req":1}', '{"type":"create","prompt":"a","record":"yes"}', '{"type":"retune","stream":"x"}', '{"type":"create","prompt":"a","watch":1}',
    ];
    const sockets = await Promise.all(Array.from({ length: 20 }, connect));
    for (let r = 0; r < 10; r++) for (const ws of sockets) for (const m of bad) ws.send(m);
    for (const ws of sockets) ws.send(Buffer.from([1, 2, 3]));
    await sleep(2000);
    closeAll(sockets);
  },
  async 'big-frames'() {
    const frame = Buffer.alloc(50 * MB, 0x61);
    for (let i = 0; i < 5; i++) {
      const ws = await connect();
      await new Promise<void>((resolve) => {
        ws.on('close', () => resolve());
        ws.on('error', () => resolve());
        ws.send(frame);
        setTimeout(resolve, 10_000);
      });
      ws.terminate();
    }
  },
  async 'big-posts'() {
    for (let i = 0; i < 5; i++) await post(50 * MB, false);
    for (let i = 0; i < 5; i++) await post(50 * MB, true);
  },
  async flood() {
    const ws = await connect();
    (ws as unknown as { _socket: net.Socket })._socket.pause(); // never reads its replies
    for (let i = 0; i < 10_000; i++) ws.send('{"type":"ping","req":1}');
    await sleep(3000);
    ws.terminate();
  },
  async creates() {
    const results = await Promise.all(Array.from({ length: 1000 }, () => api('POST', '/api/streams', { prompt }).catch(() => ({ status: 0, body: null }))));
    const counts: Record<number, number> = {};
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    console.error(`  creates: ${JSON.stringify(counts)}`);
    await sleep(3000);
    await stopAllStreams();
  },
  async viewers() {
    const created = await api('POST', '/api/streams', { prompt });
    if (created.status !== 201) return void console.error(`  viewers: no stream (${created.status} ${JSON.stringify(created.body)})`);
    const id = created.body.stream.id;
    const sockets: WebSocket[] = [];
    for (let i = 0; i < viewerCount; i++) {
      const ws = await connect().catch(() => null);
      if (!ws) continue;
      ws.on('error', () => undefined);
      ws.send(JSON.stringify({ type: 'watch', stream: id }));
      if (i % 2 === 1) (ws as unknown as { _socket: net.Socket })._socket.pause();
      sockets.push(ws);
    }
    await sleep(10_000);
    closeAll(sockets);
    await api('DELETE', `/api/streams/${id}`);
  },
  async 'idle-connections'() {
    const sockets: net.Socket[] = [];
    for (let i = 0; i < idleConnections; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
      if (i % 500 === 499) await sleep(50);
    }
    await sleep(10_000);
    for (const s of sockets) s.destroy();
  },
};

try {
  // One ordinary stream first, so that "idle" includes a generator's thread having run once.
  const first = await api('POST', '/api/streams', { prompt });
  if (first.status === 201) {
    await sleep(3000);
    await api('DELETE', `/api/streams/${first.body.stream.id}`);
  }
  await sleep(5000);
  const idle = rssMb();
  console.log(`RSS idle ${idle.toFixed(0)} MB`);
  peak = idle;
  for (const name of phases) {
    const attack = attacks[name];
    if (!attack) throw new Error(`unknown phase ${name}; phases: ${ALL.join(', ')}`);
    phasePeak = rssMb();
    const t0 = performance.now();
    await attack();
    await sleep(1000);
    console.log(`  ${name}: peak ${phasePeak.toFixed(0)} MB, ${rssMb().toFixed(0)} MB 1 s after (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  await stopAllStreams();
  await sleep(settleSeconds * 1000);
  console.log(`RSS idle ${idle.toFixed(0)} MB -> peak ${peak.toFixed(0)} MB -> after ${rssMb().toFixed(0)} MB (${settleSeconds} s after the last attack)`);
} finally {
  clearInterval(sampler);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}
