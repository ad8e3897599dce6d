/**
 * Protocol tests against the real server, generator (default tiny model, CPU) and ffmpeg:
 * create, watch, late join, prompt switch, retune, stop; token / origin / version refusals; the
 * HTTP API; /metrics; limits.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { childBoxes, codecFromInit, parseMoof, readBoxHeader, trexDefaultFlags } from '../../src/encode/mp4-boxes.js';
import { CloseCode } from '../../src/serve/protocol.js';
import { SinkstreamServer } from '../../src/serve/server.js';
import { httpJson, startTestServer, testConfig, TestClient, type Received } from './helpers/server-fixture.js';

const TOKEN = 'test-token-0123';
let server: SinkstreamServer;
let owner: TestClient;
let streamId = '';
let init: Buffer;

const isBinary = (r: Received) => r.kind === 'binary';
const binary = async (c: TestClient) => ((await c.next(isBinary)) as { data: Buffer }).data;

function assertInitSegment(data: Buffer): void {
  const types = childBoxes(data, 0, data.length).map((b) => b.type);
  assert.equal(types, ['ftyp', 'moov'], 'init segment = ftyp + moov');
  assert.match(codecFromInit(data) ?? '', /^avc1\.[0-9a-f]{6}$/);
}

function keyframeOf(fragment: Buffer, initSegment: Buffer): boolean | null {
  const boxes = childBoxes(fragment, 0, fragment.length);
  assert.equal(boxes.map((b) => b.type), ['moof', 'mdat'], 'a fragment is moof + mdat');
  return parseMoof(fragment, readBoxHeader(fragment, 0)!, trexDefaultFlags(initSegment)).startsWithKeyframe;
}

test('start a server with a token', async () => {
  server = await startTestServer({ serve: { token: TOKEN, origins: ['http://allowed.example'] } });
  assert.ok(server.port > 0);
});

test('bad token, bad origin, wrong path are refused before the handshake; a wrong version gets close code 4001', async () => {
  for (const [o, status] of [
    [{}, 401],
    [{ token: 'wrong-token-xyz' }, 401],
    [{ token: TOKEN, origin: 'http://evil.example' }, 403],
    [{ token: TOKEN, origin: `http://localhost.evil.example:${server.port}` }, 403],
    [{ token: TOKEN, path: '/other' }, 404],
  ] as const) {
    try {
      await TestClient.connect(server, o);
      assert.unreachable(`accepted ${JSON.stringify(o)}`);
    } catch (e) {
      assert.is((e as { status?: number }).status, status, JSON.stringify(o));
    }
  }
  // allowed: the configured origin, and the server's own origin
  (await TestClient.connect(server, { token: TOKEN, origin: 'http://allowed.example' })).close();
  (await TestClient.connect(server, { token: TOKEN, origin: `http://127.0.0.1:${server.port}` })).close();
  for (const version of ['2', null]) {
    const c = await TestClient.connect(server, { token: TOKEN, version });
    const closed = await c.closedWith();
    assert.is(closed.code, CloseCode.PROTOCOL_VERSION);
    assert.match(closed.reason, /this server speaks 1/);
  }
});

test('create and watch: created, watching, init announcement, init segment, then a keyframe fragment', async () => {
  owner = await TestClient.connect(server, { token: TOKEN });
  const hello = await owner.nextOf('hello');
  assert.is(hello.version, 1);
  owner.send({ type: 'create', req: 7, prompt: 'a red circle bouncing on a black background', overrides: { cache: { window: 12, sink: 3 } } });
  const created = await owner.nextOf('created', 30_000);
  assert.is(created.req, 7);
  assert.is(created.stream.prompt, 'a red circle bouncing on a black background');
  streamId = created.stream.id;
  const watching = await owner.nextOf('watching');
  assert.is(watching.stream.id, streamId);
  const announce = await owner.nextOf('init', 30_000);
  assert.is(announce.reason, 'start');
  assert.is(announce.width, 64);
  init = await binary(owner);
  assertInitSegment(init);
  assert.is(announce.codec, codecFromInit(init));
  const first = await binary(owner);
  assert.is(keyframeOf(first, init), true);
});

test('a late joiner: its first binary message is the init segment, the next a fragment starting with a keyframe', async () => {
  // let the stream run past its first group of pictures
  for (let i = 0; i < 20; i++) await binary(owner);
  const late = await TestClient.connect(server, { token: TOKEN });
  late.send({ type: 'watch', stream: streamId, req: 1 });
  const watching = await late.nextOf('watching');
  assert.is(watching.req, 1);
  const firstBinary = await late.next(isBinary);
  assert.is(late.received.indexOf(firstBinary), late.received.findIndex(isBinary), 'nothing binary before it');
  const lateInit = (firstBinary as { data: Buffer }).data;
  assertInitSegment(lateInit);
  assert.ok(lateInit.equals(init), 'the cached init segment');
  assert.is(keyframeOf(await binary(late), init), true);
  for (let i = 0; i < 3; i++) keyframeOf(await binary(late), init); // and it keeps receiving
  late.close();
});

test('switch prompt: acknowledged, seamless (no new init), frames keep coming', async () => {
  owner.send({ type: 'prompt', stream: streamId, prompt: 'a blue square bouncing on a dark blue background', req: 11 });
  const ok = await owner.nextOf('ok');
  assert.is(ok.req, 11);
  assert.is(ok.op, 'prompt');
  assert.is(ok.stream?.prompt, 'a blue square bouncing on a dark blue background');
  const from = owner.received.length;
  for (let i = 0; i < 6; i++) await binary(owner);
  assert.not.ok(owner.received.slice(from).some((r) => r.kind === 'text' && r.message.type === 'init'));
  // an unknown word is refused with a reason; the connection stays
  owner.send({ type: 'prompt', stream: streamId, prompt: 'zzqx-not-a-word', req: 12 });
  const err = await owner.nextOf('error');
  assert.is(err.req, 12);
  assert.is(err.code, 'bad-prompt', 'the viewer is told the prompt was refused (ERR_PROMPT)');
  assert.match(err.message, /ERR_PROMPT/);
});

test('retune: applied from the next block; an impossible combination is refused', async () => {
  owner.send({ type: 'retune', stream: streamId, cache: { policy: 'window', window: 6 }, req: 21 });
  const ok = await owner.nextOf('ok');
  assert.is(ok.stream?.cache.policy, 'window');
  assert.is(ok.stream?.cache.window, 6);
  // two blocks later the cache holds at most window - block frames = 3 frames, none of them sink
  const blocksNow = (await owner.nextOf('stats')).figures.blocks;
  let figures = (await owner.nextOf('stats')).figures;
  while (figures.blocks < blocksNow + 2) figures = (await owner.nextOf('stats')).figures;
  assert.ok(figures.cache.length <= 3, JSON.stringify(figures.cache));
  assert.is(figures.cache.filter((s) => s.role === 'sink').length, 0, JSON.stringify(figures.cache));
  owner.send({ type: 'retune', stream: streamId, cache: { window: 3 }, req: 22 });
  const err = await owner.nextOf('error');
  assert.is(err.req, 22);
  assert.is(err.code, 'invalid-config');
  owner.send({ type: 'ping', req: 23 });
  assert.is((await owner.nextOf('pong')).req, 23);
});

test('/metrics: TTFF, lateness and latency histograms and delivery counters from the ledger; per-stream gauges', async () => {
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  assert.is(res.status, 200);
  const text = await res.text();
  for (const line of [
    'sinkstream_time_to_first_frame_seconds_count 1',
    'sinkstream_frame_lateness_seconds_bucket{le="+Inf"}',
    'sinkstream_frame_latency_seconds_bucket{le="+Inf"}',
    'sinkstream_frames_delivered_total',
    'sinkstream_deadline_misses_total',
    `sinkstream_deadline_miss_ratio{stream="${streamId}"}`,
    `sinkstream_generation_fps{stream="${streamId}"}`,
    `sinkstream_cache_occupancy_ratio{stream="${streamId}"}`,
    'sinkstream_streams 1',
  ]) {
    assert.ok(text.includes(line), `missing ${line}`);
  }
  const ttff = Number(/^sinkstream_time_to_first_frame_seconds_sum (\S+)/m.exec(text)![1]);
  assert.ok(ttff > 0 && ttff < 60, `ttff ${ttff}`);
  // one playout ledger: the frames counted delivered are the ledger's, and each was observed once
  const figures = server.streams.get(streamId)!.figures();
  const delivered = Number(/^sinkstream_frames_delivered_total (\S+)/m.exec(text)![1]);
  const observed = Number(/^sinkstream_frame_lateness_seconds_count (\S+)/m.exec(text)![1]);
  assert.is(observed, delivered);
  assert.ok(delivered > 0 && delivered <= figures.framesDelivered, `${delivered} vs ledger ${figures.framesDelivered}`);
  // exactly one TTFF metric
  const ttffNames = new Set(text.split('\n').filter((l) => l.startsWith('# TYPE') && /ttff|first_frame/i.test(l)).map((l) => l.split(' ')[2]));
  assert.equal([...ttffNames], ['sinkstream_time_to_first_frame_seconds']);
});

test('HTTP API: token required; list, get, prompt, retune', async () => {
  assert.is((await httpJson(server, 'GET', '/api/streams')).status, 401);
  assert.is((await httpJson(server, 'GET', '/api/streams', undefined, 'wrong-token-xyz')).status, 401);
  const list = await httpJson(server, 'GET', '/api/streams', undefined, TOKEN);
  assert.is(list.status, 200);
  assert.equal(list.body.streams.map((s: { id: string }) => s.id), [streamId]);
  const one = await httpJson(server, 'GET', `/api/streams/${streamId}`, undefined, TOKEN);
  assert.ok(one.body.figures.frames > 0);
  const p = await httpJson(server, 'POST', `/api/streams/${streamId}/prompt`, { prompt: 'a red square bouncing on a dark gray background' }, TOKEN);
  assert.is(p.status, 200);
  assert.is(p.body.stream.prompt, 'a red square bouncing on a dark gray background');
  const r = await httpJson(server, 'POST', `/api/streams/${streamId}/retune`, { cache: { policy: 'sink', window: 12, sink: 3 } }, TOKEN);
  assert.equal(r.body.stream.cache, { policy: 'sink', sink: 3, window: 12 });
  const bad = await httpJson(server, 'POST', `/api/streams/${streamId}/retune`, { cache: { window: 'big' } }, TOKEN);
  assert.is(bad.status, 400);
  assert.is(bad.body.error.code, 'bad-message');
  const form = await fetch(`http://127.0.0.1:${server.port}/api/streams`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
    body: '{"prompt":"x"}',
  });
  assert.is(form.status, 415);
  assert.is((await httpJson(server, 'GET', '/api/streams/nope', undefined, TOKEN)).status, 404);
});

test('stop: viewers are told, the stream is gone', async () => {
  owner.send({ type: 'stop', stream: streamId, req: 31 });
  const ended = await owner.nextOf('ended', 30_000);
  assert.is(ended.stream, streamId);
  const ok = await owner.nextOf('ok');
  assert.is(ok.req, 31);
  assert.is(ok.stream?.state, 'ended');
  assert.is((await httpJson(server, 'GET', `/api/streams/${streamId}`, undefined, TOKEN)).status, 404);
  owner.send({ type: 'stop', stream: streamId, req: 32 });
  assert.is((await owner.nextOf('error')).code, 'not-found');
  owner.close();
  await server.close();
});

test('limits: a second stream and a third connection are refused with a reason', async () => {
  const s = await startTestServer({ serve: { maxStreams: 1, maxViewers: 2 } });
  try {
    const a = await TestClient.connect(s);
    a.send({ type: 'create', prompt: 'a red circle bouncing on a black background', watch: false, req: 1 });
    await a.nextOf('created', 30_000);
    a.send({ type: 'create', prompt: 'a red circle bouncing on a black background', watch: false, req: 2 });
    const refused = await a.nextOf('error');
    assert.is(refused.code, 'stream-limit');
    assert.match(refused.message, /serve\.maxStreams/);
    const created = await httpJson(s, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' });
    // 503: this instance is full (a balancer retries the create on another one).
    assert.is(created.status, 503);
    assert.is(created.body.error.code, 'stream-limit');
    const b = await TestClient.connect(s);
    const c = await TestClient.connect(s);
    const closed = await c.closedWith();
    assert.is(closed.code, CloseCode.SERVER_FULL);
    assert.match(closed.reason, /serve\.maxViewers/);
    // overrides a client may not send
    a.send({ type: 'create', prompt: 'a red circle bouncing on a black background', overrides: { model: { weights: '/etc/passwd' } }, req: 3 });
    assert.is((await a.nextOf('error')).code, 'bad-message');
    a.close();
    b.close();
  } finally {
    await s.close();
  }
});

test('a create the generator rejects (a word outside the vocabulary) is refused with the reason', async () => {
  const s = await startTestServer();
  try {
    const a = await TestClient.connect(s);
    a.send({ type: 'create', prompt: 'a zzqx circle', req: 1 });
    const err = await a.nextOf('error', 30_000);
    assert.is(err.req, 1);
    assert.is(err.code, 'bad-prompt');
    assert.match(err.message, /zzqx/);
    a.send({ type: 'create', prompt: 'a red circle bouncing on a black background', overrides: { cache: { sink: 9, window: 10 } }, req: 2 });
    const impossible = await a.nextOf('error');
    assert.is(impossible.code, 'invalid-config');
    assert.match(impossible.message, /cache\.window/);
    assert.equal(s.streams.list(), []);
    a.close();
  } finally {
    await s.close();
  }
});

test('refuses to listen beyond loopback without a token', async () => {
  try {
    await SinkstreamServer.listen({ config: testConfig({ serve: { host: '0.0.0.0' } }), env: {} });
    assert.unreachable('listened');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_CONFIG_INVALID');
    assert.match((e as Error).message, /SINKSTREAM_TOKEN/);
  }
  const s = await SinkstreamServer.listen({ config: testConfig({ serve: { host: '0.0.0.0' } }), env: { SINKSTREAM_TOKEN: 'from-the-env-1' } });
  assert.is(s.token, 'from-the-env-1');
  await s.close();
});

test.run();
