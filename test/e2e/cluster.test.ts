/**
 * End to end: three `sinkstream serve` processes (the demo model on the CPU, one stream each, 4 fps)
 * behind HAProxy running deploy/haproxy.cfg on local ports. Streams are opened until every instance
 * is full (each lands on an instance with room; a full cluster answers 503), every viewer's WebSocket
 * and control request through HAProxy reaches the stream's own instance, and one instance drained by
 * SIGTERM refuses new streams while its stream goes on for its viewer, then ends with its recording
 * finished, and the process exits 0.
 *
 * HAProxy comes from Debian: installed here with apt-get when missing and running as root, else the
 * test is skipped with the reason printed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeVideo, sleep, tempDir } from '../encode/helpers.js';
import { httpJson, TestClient } from '../serve/helpers/server-fixture.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'cluster-test-token';
const NAMES = ['sinkstream-0', 'sinkstream-1', 'sinkstream-2'] as const;

function haproxyPath(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v haproxy || ls /usr/sbin/haproxy 2>/dev/null'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  return found || null;
}

/** HAProxy's path, installing Debian's package when missing (as root); or why it cannot be had. */
function ensureHaproxy(): { path: string } | { skip: string } {
  const existing = haproxyPath();
  if (existing) return { path: existing };
  if (process.getuid?.() !== 0) return { skip: 'haproxy is not installed and this is not root (apt-get install -y haproxy)' };
  process.stdout.write('cluster test: installing haproxy (apt-get install -y haproxy)\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'haproxy'], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8' });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'haproxy'], { env, encoding: 'utf8' });
  }
  const installed = haproxyPath();
  return installed ? { path: installed } : { skip: `apt-get install haproxy failed: ${(r.stderr ?? '').trim().split('\n').slice(-1)[0]}` };
}

const handedOut = new Set<number>();

/**
 * A port free now, below Linux's ephemeral range (32768-60999) and not handed out before: a port the kernel picks for
 * listen(0) is an ephemeral one, and the test's own outgoing connections (the readiness polls) took such a port
 * between this check and the instance binding it (EADDRINUSE on an agent port).
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    const server = net.createServer();
    const bound = await new Promise<boolean>((r) => {
      server.once('error', () => r(false));
      server.listen(port, '127.0.0.1', () => r(true));
    });
    if (!bound) continue;
    await new Promise((r) => server.close(r));
    handedOut.add(port);
    return port;
  }
}

interface Instance {
  name: string;
  port: number;
  agentPort: number;
  recordDir: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  log: string[];
}

function startInstance(name: string, port: number, agentPort: number, dir: string): Instance {
  const recordDir = path.join(dir, name);
  const settings = [
    `serve.instanceId=${name}`,
    `serve.agentPort=${agentPort}`,
    'serve.maxStreams=1',
    'serve.spareGenerators=0',
    'serve.drainSeconds=3',
    'serve.statsIntervalMs=1000',
    'serve.logLevel=warn',
    `serve.recordDir=${recordDir}`,
    'scheduler.targetFps=4',
    'engine.threads=1',
  ];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'serve', '--port', String(port), ...settings.flatMap((s) => ['--set', s])], {
    cwd: root,
    env: { ...process.env, SINKSTREAM_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  child.stdout!.on('data', (c: Buffer) => log.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => log.push(c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { name, port, agentPort, recordDir, child, exited, log };
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** HAProxy's view of a backend's servers: name -> {status, weight} (its stats page as CSV). */
async function serverStates(statsPort: number, backend: string): Promise<Map<string, { status: string; weight: number }>> {
  const csv = await (await fetch(`http://127.0.0.1:${statsPort}/;csv`)).text();
  const lines = csv.split('\n');
  const header = lines[0].replace(/^# /, '').split(',');
  const col = (n: string) => header.indexOf(n);
  const out = new Map<string, { status: string; weight: number }>();
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    if (f[col('pxname')] === backend && (NAMES as readonly string[]).includes(f[col('svname')])) {
      out.set(f[col('svname')], { status: f[col('status')], weight: Number(f[col('weight')]) });
    }
  }
  return out;
}

const instanceOf = (id: string) => id.replace(/-[0-9a-f]+$/, '');

const setup = ensureHaproxy();

if ('skip' in setup) {
  process.stdout.write(`cluster test skipped: ${setup.skip}\n`);
} else {
  test('three instances behind HAProxy: placement by free capacity, affinity of viewers and control, drain of one', async () => {
    const dir = tempDir('cluster');
    const instances: Instance[] = [];
    let haproxy: ChildProcess | undefined;
    const viewers: TestClient[] = [];
    try {
      for (const name of NAMES) instances.push(startInstance(name, await freePort(), await freePort(), dir));
      const lb = { port: await freePort() };
      const statsPort = await freePort();
      for (const i of instances) {
        await until(`${i.name} ready`, async () => ((await fetch(`http://127.0.0.1:${i.port}/readyz`)).status === 200 ? true : undefined), 40_000).catch((e) => {
          throw new Error(`${(e as Error).message}\n${i.log.join('')}`);
        });
      }
      const env: NodeJS.ProcessEnv = { ...process.env, SINKSTREAM_BIND: `127.0.0.1:${lb.port}`, SINKSTREAM_CHECK_INTER: '200ms', SINKSTREAM_STATS_BIND: `127.0.0.1:${statsPort}` };
      instances.forEach((i, k) => {
        env[`SINKSTREAM_${k}`] = `127.0.0.1:${i.port}`;
        env[`SINKSTREAM_${k}_AGENT`] = String(i.agentPort);
      });
      haproxy = spawn((setup as { path: string }).path, ['-db', '-f', path.join(root, 'deploy', 'haproxy.cfg')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      const haproxyLog: string[] = [];
      haproxy.stderr!.on('data', (c: Buffer) => haproxyLog.push(c.toString()));
      // Every instance up with its free capacity as weight (the agent: 'ready 100%').
      await until('HAProxy to see three ready instances', async () => {
        const s = await serverStates(statsPort, 'placement');
        return s.size === 3 && [...s.values()].every((v) => v.status === 'UP' && v.weight > 0) ? true : undefined;
      }, 15_000).catch((e) => {
        throw new Error(`${(e as Error).message}\n${haproxyLog.join('')}`);
      });

      // Placement: three creates through the balancer land on three different instances (a full one
      // refuses with 503 and HAProxy retries elsewhere); the fourth finds the cluster full.
      const ids: string[] = [];
      for (let k = 0; k < 3; k++) {
        const r = await httpJson(lb, 'POST', '/v1/streams', { prompt: 'a red circle bouncing on a black background', record: true }, TOKEN);
        assert.is(r.status, 201, JSON.stringify(r.body));
        assert.match(r.body.viewerUrl, new RegExp(`^http://127\\.0\\.0\\.1:${lb.port}/\\?stream=${r.body.stream.id}$`));
        ids.push(r.body.stream.id);
      }
      assert.equal(ids.map(instanceOf).sort(), [...NAMES], `one stream per instance: ${ids.join(', ')}`);
      const full = await fetch(`http://127.0.0.1:${lb.port}/v1/streams`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ prompt: 'a blue square bouncing on a dark blue background' }),
      });
      assert.is(full.status, 503, 'every instance is full');
      await full.arrayBuffer();

      // Affinity: requests about a stream reach its instance whichever the balancer would pick (a
      // wrong instance answers 404); a viewer's WebSocket naming the stream watches it there.
      for (const id of ids) {
        for (let k = 0; k < 3; k++) {
          const got = await httpJson(lb, 'GET', `/v1/streams/${id}`, undefined, TOKEN);
          assert.is(got.status, 200, `GET ${id}: ${JSON.stringify(got.body)}`);
          assert.is(got.body.stream.id, id);
        }
        const switched = await httpJson(lb, 'POST', `/v1/streams/${id}/prompt`, { prompt: 'a blue square bouncing on a dark blue background' }, TOKEN);
        assert.is(switched.status, 200, JSON.stringify(switched.body));
        const viewer = await TestClient.connect(lb, { token: TOKEN, query: { stream: id } });
        viewers.push(viewer);
        viewer.send({ type: 'watch', stream: id, req: 1 });
        assert.is((await viewer.nextOf('watching', 15_000)).stream.id, id);
        await viewer.next((r) => r.kind === 'binary', 20_000);
        viewer.send({ type: 'retune', stream: id, cache: { window: 12 }, req: 2 });
        const ok = await viewer.nextOf('ok', 15_000);
        assert.is(ok.req, 2);
      }

      // Drain: SIGTERM to the first stream's instance. It refuses at once (its /readyz and agent), its
      // stream goes on for its viewer until the grace (3 s) is over, then ends with its recording finished.
      const drained = instances.find((i) => i.name === instanceOf(ids[0]))!;
      const drainedViewer = viewers[0];
      drained.child.kill('SIGTERM');
      const ready = await until('the drained instance to be unready', async () => {
        const r = await fetch(`http://127.0.0.1:${drained.port}/readyz`);
        const body = (await r.json()) as { reason?: string };
        return r.status === 503 && body.reason === 'draining' ? body : undefined;
      }, 5_000);
      assert.is(ready.reason, 'draining');
      const before = drainedViewer.received.filter((r) => r.kind === 'binary').length;
      // A place frees on another instance: the next stream goes there, never to the draining one.
      const freed = ids[1];
      assert.is((await httpJson(lb, 'DELETE', `/v1/streams/${freed}`, undefined, TOKEN)).status, 200);
      const again = await until('a create after the stop', async () => {
        const r = await httpJson(lb, 'POST', '/v1/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN);
        return r.status === 201 ? r : undefined;
      }, 10_000);
      assert.is(instanceOf(again.body.stream.id), instanceOf(freed), 'the new stream goes to the instance with room');
      // The drained stream delivered fragments after the SIGTERM, then ended.
      const ended = await drainedViewer.nextOf('ended', 20_000);
      assert.is(ended.stream, ids[0]);
      assert.ok(drainedViewer.received.filter((r) => r.kind === 'binary').length > before, 'fragments during the drain');
      assert.is(await drained.exited, 0, drained.log.join(''));
      const recording = path.join(drained.recordDir, `${ids[0]}.mp4`);
      assert.ok(fs.existsSync(recording), 'the drained stream was recorded');
      assert.ok((await probeVideo(recording)).frames > 0, 'its recording is playable');
    } finally {
      for (const v of viewers) v.close();
      haproxy?.kill('SIGTERM');
      for (const i of instances) {
        if (i.child.exitCode === null) {
          i.child.kill('SIGTERM');
          await sleep(100);
          i.child.kill('SIGTERM'); // the second signal stops the streams at once
        }
      }
      await Promise.all(instances.map((i) => Promise.race([i.exited, sleep(10_000).then(() => i.child.kill('SIGKILL'))])));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
