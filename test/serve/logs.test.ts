/**
 * The server's log (pino): one JSON line per HTTP request (method, path without the query, status,
 * ms; probes at debug) and per stream event (admitted, refused with the reason, prompt switched,
 * encoder restarted, ended), each with its level and time; the terminal format is readable.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, prettyLines } from '../../src/serve/logger.js';
import { httpJson, startTestServer } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';

const TOKEN = 'logs-test-token-1';

type Entry = Record<string, any>;

function capture(level: 'info' | 'debug' = 'debug') {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  const entries = () => lines.map((l) => JSON.parse(l) as Entry);
  return { logger, lines, entries };
}

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a line per request and per stream event, as JSON with level and time', async () => {
  const log = capture();
  const server = await startTestServer({ serve: { token: TOKEN, maxStreams: 1 } }, { scheduling: false, createGenerator: async () => new StepsGenerator(), logger: log.logger });
  try {
    await fetch(`http://127.0.0.1:${server.port}/healthz`);
    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN);
    assert.is(created.status, 201);
    const id: string = created.body.stream.id;
    const refused = await httpJson(server, 'POST', '/api/streams', { prompt: 'a blue square bouncing on a dark blue background' }, TOKEN);
    assert.is(refused.body.error.code, 'stream-limit');
    await httpJson(server, 'POST', `/api/streams/${id}/prompt`, { prompt: 'a blue square bouncing on a dark blue background' }, TOKEN);
    await fetch(`http://127.0.0.1:${server.port}/api/streams?token=${TOKEN}`); // a token in the query is never logged

    const stream = server.streams.get(id)!;
    const pid = stream.encoderPid!;
    await until('the first fragment', () => (stream.figures().framesDelivered > 0 ? true : undefined));
    process.kill(pid, 'SIGKILL');
    await until('the encoder restart', () => log.entries().find((e) => e.event === 'encoder-restarted'));
    await httpJson(server, 'DELETE', `/api/streams/${id}`, undefined, TOKEN);
    await until('the end', () => log.entries().find((e) => e.event === 'stream-ended'));

    const entries = log.entries();
    for (const e of entries) {
      assert.type(e.level, 'string');
      assert.ok(!Number.isNaN(Date.parse(e.time)), `time ${e.time}`);
      assert.type(e.msg, 'string');
    }
    const requests = entries.filter((e) => e.event === 'http-request');
    const probe = requests.find((e) => e.path === '/healthz')!;
    assert.equal([probe.level, probe.method, probe.status], ['debug', 'GET', 200]);
    assert.type(probe.ms, 'number');
    const create = requests.find((e) => e.method === 'POST' && e.path === '/api/streams' && e.status === 201)!;
    assert.is(create.level, 'info');
    assert.ok(requests.some((e) => e.path === '/api/streams' && e.method === 'GET'));
    assert.not.ok(log.lines.some((l) => l.includes(TOKEN)), 'the token is in no log line');

    const admitted = entries.find((e) => e.event === 'stream-admitted')!;
    assert.is(admitted.stream, id);
    assert.is(admitted.prompt, 'a red circle bouncing on a black background');
    const refusal = entries.find((e) => e.event === 'stream-refused')!;
    assert.is(refusal.reason, 'stream-limit');
    assert.match(refusal.detail, /serve\.maxStreams/);
    const switched = entries.find((e) => e.event === 'prompt-switched')!;
    assert.equal([switched.stream, switched.prompt], [id, 'a blue square bouncing on a dark blue background']);
    const restarted = entries.find((e) => e.event === 'encoder-restarted')!;
    assert.equal([restarted.level, restarted.stream, restarted.restarts], ['warn', id, 1]);
    const ended = entries.find((e) => e.event === 'stream-ended')!;
    assert.is(ended.stream, id);
    assert.is(ended.reason, 'stopped by a client');
    assert.ok(ended.framesDelivered > 0);
    assert.type(ended.ttffMs, 'number');
  } finally {
    await server.close();
  }
});

test('level info leaves out the probes; the terminal format is one readable line', async () => {
  const log = capture('info');
  const server = await startTestServer({}, { scheduling: false, createGenerator: async () => new StepsGenerator(), logger: log.logger });
  try {
    await fetch(`http://127.0.0.1:${server.port}/readyz`);
    await fetch(`http://127.0.0.1:${server.port}/metrics`);
    await fetch(`http://127.0.0.1:${server.port}/no-such-page`);
  } finally {
    await server.close();
  }
  const requests = log.entries().filter((e) => e.event === 'http-request');
  assert.equal(requests.map((e) => [e.path, e.status]), [['/no-such-page', 404]]);

  const out: string[] = [];
  const pretty = createLogger({ destination: prettyLines({ write: (l: string) => void out.push(l) }, false) });
  pretty.warn({ event: 'encoder-restarted', stream: 'abc', restarts: 2, detail: 'ffmpeg exited 1' }, 'stream abc: encoder restarted');
  assert.is(out.length, 1);
  assert.match(out[0], /^\d\d:\d\d:\d\d\.\d{3} WARN  stream abc: encoder restarted  event=encoder-restarted stream=abc restarts=2 detail="ffmpeg exited 1"\n$/);
});

test.run();
