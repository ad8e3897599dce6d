/**
 * /metrics by Prometheus' conventions: every sample line well formed; counters end in `_total`,
 * nothing else of ours does; histograms with their buckets (+Inf = count), no summaries; one time
 * to first frame metric, fed by the playout ledger; `sinkstream_build_info` = 1; Node's and the
 * process' own metrics; no stream label on counters or histograms, and an ended stream's series
 * gone. The Grafana dashboard in deploy/ asks only for metrics a scrape has.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServerMetrics } from '../../src/serve/metrics.js';
import { PlayoutLedger } from '../../src/serve/playout-ledger.js';
import { httpJson, startTestServer } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'metrics-test-token';

interface Scrape {
  types: Map<string, string>;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The text exposition format, strictly: every line a comment or `name{labels} value`. */
function parse(text: string): Scrape {
  const types = new Map<string, string>();
  const samples: Scrape['samples'] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name, type);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = SAMPLE.exec(line);
    assert.ok(m, `malformed line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m![2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2];
    const value = m![3] === '+Inf' ? Infinity : m![3] === '-Inf' ? -Infinity : Number(m![3]);
    assert.ok(!Number.isNaN(value) || /^nan$/i.test(m![3]), `value of ${line}`);
    samples.push({ name: m![1], labels, value });
  }
  return { types, samples };
}

/** The family a sample belongs to (a histogram's _bucket / _sum / _count are its own). */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return types.get(base) === 'histogram' ? base : undefined;
}

let scrape: Scrape;
let afterEnd: Scrape;

test('a scrape after a stream ran, and after it ended', async () => {
  const server = await startTestServer({ serve: { token: TOKEN, maxStreams: 1 } }, { scheduling: false, createGenerator: async () => new StepsGenerator() });
  try {
    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN);
    const id: string = created.body.stream.id;
    await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN); // refused: stream-limit
    const stream = server.streams.get(id)!;
    const deadline = Date.now() + 20_000;
    while (stream.figures().framesDelivered < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    scrape = parse(await res.text());
    assert.ok(scrape.samples.some((s) => s.labels.stream === id), 'per-stream gauges of the live stream');
    await httpJson(server, 'DELETE', `/api/streams/${id}`, undefined, TOKEN);
    afterEnd = parse(await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text());
  } finally {
    await server.close();
  }
});

test('conventions: counters end in _total, histograms have buckets, no summaries, seconds as the unit', () => {
  for (const [name, type] of scrape.types) {
    assert.ok(['counter', 'gauge', 'histogram'].includes(type), `${name} is a ${type}`);
    if (type === 'counter') assert.ok(name.endsWith('_total'), `counter ${name} without _total`);
    if (name.startsWith('sinkstream_') && type !== 'counter') assert.not.ok(name.endsWith('_total'), `${type} ${name} ends in _total`);
    if (type === 'histogram' && name.startsWith('sinkstream_')) {
      assert.ok(name.endsWith('_seconds'), `histogram ${name} is not in seconds`);
      assert.not.ok(/_ms$|millis/.test(name));
    }
  }
  for (const s of scrape.samples) assert.ok(familyOf(s.name, scrape.types), `sample ${s.name} has no # TYPE`);
  const ttff = scrape.samples.filter((s) => s.name.startsWith('sinkstream_time_to_first_frame_seconds'));
  const inf = ttff.find((s) => s.name.endsWith('_bucket') && s.labels.le === '+Inf')!;
  const count = ttff.find((s) => s.name.endsWith('_count'))!;
  assert.ok(ttff.filter((s) => s.name.endsWith('_bucket')).length > 5, 'TTFF buckets');
  assert.is(inf.value, count.value);
  assert.is(count.value, 1, 'one stream, one first frame');
});

test('one TTFF metric; counters and histograms carry no stream label; build_info; Node and process metrics', () => {
  const ttffFamilies = [...scrape.types.keys()].filter((n) => /ttff|first_frame/i.test(n));
  assert.equal(ttffFamilies, ['sinkstream_time_to_first_frame_seconds']);
  for (const s of scrape.samples) {
    const type = scrape.types.get(familyOf(s.name, scrape.types)!);
    if (type !== 'gauge') assert.not.ok('stream' in s.labels, `${s.name} has a stream label`);
  }
  const build = scrape.samples.filter((s) => s.name === 'sinkstream_build_info');
  assert.is(build.length, 1);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal(build[0].labels, { version: pkg.version, node: process.version, engine: 'ort-cpu' });
  assert.is(build[0].value, 1);
  for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.ok(scrape.types.has(name), `missing ${name}`);
  }
  assert.ok(scrape.samples.some((s) => s.name === 'sinkstream_streams_refused_total' && s.labels.reason === 'stream-limit' && s.value === 1));
  assert.ok(scrape.samples.some((s) => s.name === 'sinkstream_blocks_total' && s.labels.steps === '4' && s.value > 0));
});

test('an ended stream leaves no series; what it delivered stays counted', () => {
  assert.not.ok(afterEnd.samples.some((s) => 'stream' in s.labels), 'series of the ended stream remain');
  const delivered = (x: Scrape) => x.samples.find((s) => s.name === 'sinkstream_frames_delivered_total')!.value;
  assert.ok(delivered(afterEnd) >= delivered(scrape) && delivered(scrape) > 0);
  assert.is(afterEnd.samples.find((s) => s.name === 'sinkstream_streams')!.value, 0);
});

test('the ledger feeds the histograms and counters: one observation per delivery, misses as the ledger counts them', async () => {
  const metrics = new ServerMetrics(() => []);
  const ledger = new PlayoutLedger(1000, 10, metrics.playoutObserver());
  ledger.frameDelivered(0, 1500); // TTFF 0.5 s
  ledger.frameDelivered(1, 1600); // in time
  ledger.frameDelivered(2, 1950); // due 1700: 250 ms late, 3 slots missed
  ledger.end(2300); // next was due 2050: 250 ms overdue at the end, 3 more slots
  const { samples } = parse(await metrics.text());
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))!.value;
  assert.is(value('sinkstream_time_to_first_frame_seconds_sum'), 0.5);
  assert.is(value('sinkstream_frames_delivered_total'), 3);
  assert.is(value('sinkstream_frame_lateness_seconds_count'), 3);
  assert.is(value('sinkstream_frame_lateness_seconds_sum'), 0.25);
  assert.is(value('sinkstream_frame_lateness_seconds_bucket', { le: '0.001' }), 2, 'two frames in time');
  assert.is(value('sinkstream_deadline_misses_total'), ledger.figures(2300).deadlineMisses);
  assert.is(value('sinkstream_deadline_misses_total'), 6);
});

test('the Grafana dashboard asks only for metrics /metrics exposes, and shows TTFF p50/p99, block duration, misses, refusals, streams, RSS', () => {
  const dashboard = JSON.parse(fs.readFileSync(path.join(root, 'deploy/grafana-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  assert.ok(exprs.length > 10);
  const FUNCTIONS = new Set(['sum', 'rate', 'increase', 'histogram_quantile', 'by', 'without', 'avg', 'max', 'min', 'count', 'irate', 'label_values']);
  const used = new Set<string>();
  for (const expr of exprs) {
    const bare = expr
      .replace(/\{[^}]*\}/g, '') // label matchers
      .replace(/\[[^\]]*\]/g, '') // range selectors
      .replace(/\b(by|without)\s*\([^)]*\)/g, '') // grouping labels
      .replace(/"[^"]*"/g, '');
    for (const [token] of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) if (!FUNCTIONS.has(token)) used.add(token);
  }
  for (const name of used) assert.ok(familyOf(name, scrape.types), `the dashboard asks for ${name}, which /metrics does not expose`);
  for (const needed of [
    'sinkstream_time_to_first_frame_seconds_bucket',
    'sinkstream_block_duration_seconds_bucket',
    'sinkstream_frame_lateness_seconds_bucket',
    'sinkstream_deadline_misses_total',
    'sinkstream_streams_refused_total',
    'sinkstream_streams',
    'process_resident_memory_bytes',
  ]) {
    assert.ok(used.has(needed), `the dashboard does not show ${needed}`);
  }
  const ttff = exprs.filter((e) => e.includes('sinkstream_time_to_first_frame_seconds_bucket'));
  assert.ok(ttff.some((e) => e.startsWith('histogram_quantile(0.5,')) && ttff.some((e) => e.startsWith('histogram_quantile(0.99,')), 'TTFF p50 and p99');
});

test.run();
