/**
 * Viewer load on the generator: 50 viewers on loopback (10 of them reading slowly), in a separate
 * process (load-viewers.mjs), watch one real stream; how much do the generator's block times move
 * with them watching? A figure of this machine, not a test (test/serve/load.test.ts checks what
 * does not depend on speed: slow viewers are skipped, fast ones get every fragment).
 *
 *   npm run bench:serve -- [--seconds 24] [--phases 8] [--viewers 50] [--slow 10] [--nice 0] [--set key=value ...]
 *
 * The stream is heavy on purpose: 256x256 frames (synthetic weights, a 16x space-to-depth decoder:
 * the same transformer cost, 16x the pixels) at crf 10, ~0.5 MB/s a viewer, so that slow viewers
 * overrun what the kernel buffers per connection within seconds. The ORT engine gets one thread;
 * the generator runs on its own thread; the viewers' process shares the CPU (--nice lowers its
 * priority). Unscheduled: every block does the same work at the generator's full throughput.
 *
 * The viewers stay connected; phases alternate between none of them watching (A) and all of them
 * watching (B), so that other work on a shared machine falls on both alike. Blocks that straddle a
 * phase change, or start within SETTLE_MS of it, are left out. Printed: median and mean block time
 * in A and B and the change; the drift between the two halves of the A phases (what the machine
 * moves by itself); the server process's CPU; what fast and slow viewers received. Every wait is
 * bounded (BENCH_TIMEOUT_MS, default 60 s).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { loadConfig } from '../../src/config/load.js';
import { SinkstreamServer } from '../../src/serve/server.js';
import { percentiles } from '../../src/serve/playout-ledger.js';
import type { BlockReport } from '../../src/serve/live-stream.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SECONDS = option('--seconds', 24);
const PHASES = option('--phases', 8);
const VIEWERS = option('--viewers', 50);
const SLOW = option('--slow', 10);
const NICE = option('--nice', 0);
const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 60_000);
const WARMUP_BLOCKS = 6;
const SETTLE_MS = 300;

interface ViewerReport {
  slow: boolean;
  fragments: number;
  bytes: number;
  inits: number;
  closeCode: number | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

async function until(what: string, f: () => boolean): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// The bench's stream, then any --set on top.
const config = loadConfig({
  set: [
    'model.weights=synthetic',
    'model.arch.latentChannels=768',
    'decoder.factor=16',
    'generation.opening=noise',
    'output.crf=10',
    'output.preset=ultrafast',
    'output.keyframeSeconds=0.5',
    'engine.threads=1',
    'serve.port=0',
    'serve.host=127.0.0.1',
    `serve.maxViewers=${VIEWERS + 10}`,
    `serve.viewerHighWaterBytes=${256 * 1024}`,
    `serve.viewerHardCapBytes=${4 * 1024 * 1024}`,
    ...set,
  ],
});
const server = await SinkstreamServer.listen({ config, env: {}, scheduling: false });
const viewersProcess = spawn(
  process.execPath,
  [fileURLToPath(new URL('./load-viewers.mjs', import.meta.url)), String(server.port), String(VIEWERS), String(SLOW)],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
os.setPriority(viewersProcess.pid!, NICE);
const lines = createInterface({ input: viewersProcess.stdout! })[Symbol.asyncIterator]();

try {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/streams`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a red circle bouncing on a black background' }),
  });
  const created = (await res.json()) as { stream?: { id: string } };
  if (res.status !== 201 || !created.stream) throw new Error(`create refused: HTTP ${res.status} ${JSON.stringify(created)}`);
  const stream = server.streams.get(created.stream.id)!;
  const blocks: BlockReport[] = [];
  stream.on('block', (b) => blocks.push(b));
  if ((await lines.next()).value !== 'connected') throw new Error('the viewers did not connect');
  await until('the warm-up blocks', () => blocks.length >= WARMUP_BLOCKS);

  let fragmentsWatched = 0;
  const broadcast = stream.hub.broadcast.bind(stream.hub);
  stream.hub.broadcast = (f) => {
    if (stream.hub.size === VIEWERS) fragmentsWatched++;
    broadcast(f);
  };
  const phases: Array<{ watched: boolean; from: number; to: number }> = [];
  const phaseMs = (SECONDS * 1000) / PHASES;
  const cpu = { A: 0, B: 0 };
  for (let i = 0; i < PHASES; i++) {
    const watched = i % 2 === 1;
    viewersProcess.stdin!.write(`${watched ? `watch ${stream.id}` : 'unwatch'}\n`);
    await until(`${watched ? VIEWERS : 0} viewers`, () => stream.hub.size === (watched ? VIEWERS : 0));
    const from = performance.now();
    const c0 = process.cpuUsage();
    await sleep(phaseMs);
    const c1 = process.cpuUsage(c0);
    cpu[watched ? 'B' : 'A'] += (c1.user + c1.system) / 1000;
    phases.push({ watched, from, to: performance.now() });
  }
  stream.hub.broadcast = broadcast;
  viewersProcess.stdin!.write('report\n');
  const report = JSON.parse((await lines.next()).value as string) as ViewerReport[];

  const within = (b: BlockReport, p: { from: number; to: number }) => b.readyAt - b.totalMs >= p.from + SETTLE_MS && b.readyAt <= p.to;
  const times = (pick: (p: (typeof phases)[number], i: number) => boolean) =>
    blocks.filter((b) => phases.some((p, i) => pick(p, i) && within(b, p))).map((b) => b.totalMs);
  const without = times((p) => !p.watched);
  const withViewers = times((p) => p.watched);
  const pa = percentiles(without);
  const pb = percentiles(withViewers);
  const half = (k: number) => percentiles(times((p, i) => !p.watched && (i / 2) % 2 === k)).p50;
  const drift = half(0) / half(1) - 1;
  const fast = report.filter((v) => !v.slow);
  const slow = report.filter((v) => v.slow);
  const figures = stream.figures();
  const watchedSeconds = (phases.filter((p) => p.watched).length * phaseMs) / 1000;
  const mibps = fast.reduce((s, v) => s + v.bytes, 0) / watchedSeconds / 2 ** 20;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(
    [
      `block ms without viewers: p50 ${pa.p50.toFixed(0)}, mean ${mean(without).toFixed(0)} (n=${without.length})`,
      `block ms with ${VIEWERS} viewers (${SLOW} slow): p50 ${pb.p50.toFixed(0)}, mean ${mean(withViewers).toFixed(0)} (n=${withViewers.length})`,
      `change of the median with viewers: ${pct(pb.p50 / pa.p50 - 1)}; drift between no-viewer phases: ${pct(drift)}`,
      `server process CPU: ${(cpu.A / (watchedSeconds * 1000)).toFixed(2)} cores without viewers, ${(cpu.B / (watchedSeconds * 1000)).toFixed(2)} with; load average ${os.loadavg()[0].toFixed(1)}`,
      `fast viewers got ${Math.min(...fast.map((v) => v.fragments))}-${Math.max(...fast.map((v) => v.fragments))} of the ${fragmentsWatched} fragments sent while all watched (${mibps.toFixed(1)} MiB/s to them in all)`,
      `slow viewers got ${slow.map((v) => v.fragments).join(',')}; skipped fragments ${figures.skippedFragments}, dropped viewers ${figures.droppedViewers}`,
    ].join('\n'),
  );
} finally {
  viewersProcess.stdin!.end();
  viewersProcess.kill();
  await server.close();
}
