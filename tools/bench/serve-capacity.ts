/**
 * How many live streams this machine holds at the configured objective (by default the video's own
 * rate, generation.fps): starts `serve` in this process on 127.0.0.1 (real calibration, generator
 * threads and ffmpeg), creates streams over the HTTP API one by one until the block scheduler refuses
 * one (or --max is reached), lets them run, then reports per stream what the scheduler delivered over
 * a measured window: frames, frame rate, deadline misses and the steps its blocks ran at.
 *
 *   node --import tsx tools/bench/serve-capacity.ts [--max 6] [--seconds 30] [--warmup 5] [--set key=value ...]
 *
 * e.g. `--set scheduler.targetFps=4` for the old demo objective. Streams have no viewers (a browser
 * would be on another machine); the encoders run all the same.
 */
import { loadConfig } from '../../src/config/load.js';
import { SinkstreamServer } from '../../src/serve/server.js';
import { createLogger } from '../../src/serve/logger.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const max = option('--max', 6);
const seconds = option('--seconds', 30);
const warmup = option('--warmup', 5);
const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));

const config = loadConfig({ set, overrides: { serve: { host: '127.0.0.1', port: 0, maxStreams: max, idleStopSeconds: 0 } } });
const server = await SinkstreamServer.listen({ config, env: {}, logger: createLogger({ pretty: true }) });
const base = `http://127.0.0.1:${server.port}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json() };
}

try {
  await server.scheduling?.prepare();
  const ids: string[] = [];
  let refusal = `stopped at --max ${max}`;
  while (ids.length < max) {
    const r = await api('POST', '/api/streams', { prompt: 'a red circle and a blue square bouncing on a dark green background' });
    if (r.status !== 201) {
      refusal = `stream ${ids.length + 1} refused (HTTP ${r.status}): ${r.body.error?.message}`;
      break;
    }
    ids.push(r.body.stream.id);
    console.error(`  admitted stream ${ids.length} (${r.body.stream.id}) at ${r.body.stream.fps} fps`);
    await sleep(1000); // let its first blocks run, so the next admission sees the device under load
  }
  await sleep(warmup * 1000);
  const figures = async () => Promise.all(ids.map(async (id) => (await api('GET', `/api/streams/${id}`)).body.figures ?? null));
  const before = await figures();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const after = await figures();
  const span = (performance.now() - t0) / 1000;
  const fps = config.scheduler.targetFps ?? config.generation.fps;
  console.log(`objective ${fps} fps; admitted ${ids.length} stream(s); ${refusal}`);
  const misses = (f: any): number => f.deadlineMisses ?? f.scheduler?.missedDeadlines ?? NaN;
  ids.forEach((id, i) => {
    const a = after[i];
    const b = before[i];
    if (!a || !b) return console.log(`  ${id}: stopped before the end of the window`);
    const frames = a.frames - b.frames;
    const bySteps = (f: any): Record<string, number> => f.scheduler?.blocksBySteps ?? {};
    const steps = Object.entries(bySteps(a))
      .map(([s, n]) => `${s}:${n - (bySteps(b)[s] ?? 0)}`)
      .join(' ');
    console.log(
      `  ${id}: generated ${frames} frames in ${span.toFixed(1)} s = ${(frames / span).toFixed(1)} fps, ${misses(a) - misses(b)} missed playout slots, ` +
        `steps now ${a.scheduler?.steps ?? '?'} (blocks by steps in the window ${steps})`,
    );
  });
  const device = server.scheduling ? await server.metrics.text() : '';
  const speed = /sinkstream_scheduler_device_speed_ratio\{[^}]*\} ([\d.]+)/.exec(device)?.[1];
  const utilisation = /sinkstream_scheduler_device_utilisation_ratio\{[^}]*\} ([\d.]+)/.exec(device)?.[1];
  console.log(`device speed estimate x${speed ?? '?'} of calibration, planned utilisation ${utilisation ?? '?'}`);
} finally {
  await server.close();
}
