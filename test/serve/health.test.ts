/**
 * /healthz and /readyz (no token): alive always; ready only once the engine is calibrated and warm,
 * while a stream slot is left and the server is not draining (503 with the reason otherwise). A
 * drain refuses creations with `draining` at once, lets a running stream go on delivering to its
 * viewer through the grace period, then stops it with its recording finalised and closes the server.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { probeVideo, tempDir } from '../encode/helpers.js';
import { fixedForwardCalibration, httpJson, startTestServer, TestClient } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';
import type { SinkstreamServer } from '../../src/serve/server.js';

const TOKEN = 'health-test-token';

/** Every forward takes 10 ms: any stream at 4 fps fits. */
const quickCalibration = fixedForwardCalibration(10);

async function probe(server: SinkstreamServer, path: string, host?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: host ? { host } : {} });
  return { status: res.status, body: await res.json() };
}

async function listening(server: SinkstreamServer): Promise<boolean> {
  return fetch(`http://127.0.0.1:${server.port}/healthz`).then(
    () => true,
    () => false,
  );
}

test('/healthz is 200 and /readyz goes starting -> ready -> full -> draining, without a token', async () => {
  let calibrated!: () => void;
  const gate = new Promise<void>((r) => (calibrated = r));
  const server = await startTestServer(
    { serve: { token: TOKEN, maxStreams: 1 } },
    { scheduling: { calibrate: async () => (await gate, quickCalibration) }, createGenerator: async () => new StepsGenerator() },
  );
  try {
    assert.equal(await probe(server, '/healthz'), { status: 200, body: { status: 'alive' } });
    const starting = await probe(server, '/readyz');
    assert.is(starting.status, 503);
    assert.is(starting.body.reason, 'starting');

    calibrated();
    await server.ready();
    const ready = await probe(server, '/readyz', 'sinkstream.example:8080'); // a balancer's Host is not loopback
    assert.is(ready.status, 200, JSON.stringify(ready.body));
    assert.equal(ready.body, { ready: true, streams: 0, maxStreams: 1 });

    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN);
    assert.is(created.status, 201, JSON.stringify(created.body));
    const full = await probe(server, '/readyz');
    assert.is(full.status, 503);
    assert.is(full.body.reason, 'full');
    assert.match(full.body.message, /serve\.maxStreams/);

    await httpJson(server, 'DELETE', `/api/streams/${created.body.stream.id}`, undefined, TOKEN);
    assert.is((await probe(server, '/readyz')).status, 200, 'a slot is free again');

    const running = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN);
    const drained = server.drain({ timers: { set: () => 1, clear: () => undefined } }); // a grace that does not end
    const draining = await probe(server, '/readyz');
    assert.is(draining.status, 503);
    assert.is(draining.body.reason, 'draining');
    assert.is((await probe(server, '/healthz')).status, 200, 'alive while draining');
    await httpJson(server, 'DELETE', `/api/streams/${running.body.stream.id}`, undefined, TOKEN);
    await drained; // the last stream ended: the drain does not wait for the grace
    assert.not.ok(await listening(server), 'closed after the drain');
  } finally {
    calibrated();
    await server.close();
  }
});

test('a drain: creations refused with draining (503), the running stream keeps delivering through the grace, then stops with a playable recording; the server closes', async () => {
  const recordDir = tempDir('drain-rec');
  const server = await startTestServer({ serve: { token: TOKEN, recordDir } }, { scheduling: false, createGenerator: async () => new StepsGenerator() });
  let graceOver: (() => void) | null = null;
  const timers = { set: (fn: () => void) => ((graceOver = fn), 1), clear: () => undefined };
  try {
    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background', record: true }, TOKEN);
    assert.is(created.status, 201, JSON.stringify(created.body));
    const id: string = created.body.stream.id;
    const viewer = await TestClient.connect(server, { token: TOKEN });
    viewer.send({ type: 'watch', stream: id, req: 1 });
    await viewer.nextOf('init');
    await viewer.next((r) => r.kind === 'binary'); // the init segment
    await viewer.next((r) => r.kind === 'binary'); // a first fragment

    const drained = server.drain({ graceMs: 5_000, timers });
    assert.ok(graceOver, 'the grace period is timed');
    const refused = await httpJson(server, 'POST', '/api/streams', { prompt: 'a blue square bouncing on a dark blue background' }, TOKEN);
    assert.is(refused.status, 503);
    assert.is(refused.body.error.code, 'draining');
    assert.is((await probe(server, '/readyz')).body.reason, 'draining');

    // during the grace the stream goes on for its viewer, and viewers may still join it
    const received = viewer.received.length;
    for (let i = 0; i < 4; i++) await viewer.next((r) => r.kind === 'binary');
    assert.is(server.streams.get(id)?.state, 'running');
    const late = await TestClient.connect(server, { token: TOKEN });
    late.send({ type: 'watch', stream: id, req: 2 });
    await late.nextOf('init');
    assert.ok(viewer.received.length > received);

    graceOver!();
    const ended = await viewer.nextOf('ended');
    assert.match(ended.reason, /drain/);
    await drained;
    await server.closed;
    assert.is((await viewer.closedWith()).code, 1001);
    const video = await probeVideo(path.join(recordDir, `${id}.mp4`));
    assert.is(video.codec, 'h264');
    assert.ok(video.frames >= 4, `${video.frames} frames`);
    assert.not.ok(await listening(server), 'closed after the drain');
    late.close();
  } finally {
    await server.close();
    fs.rmSync(recordDir, { recursive: true, force: true });
  }
});

test('a drain ends as soon as the last stream ends (before the grace)', async () => {
  const server = await startTestServer({ serve: { token: TOKEN } }, { scheduling: false, createGenerator: async () => new StepsGenerator() });
  const timers = { set: () => 1, clear: () => undefined }; // a grace that never ends
  try {
    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN);
    const drained = server.drain({ timers });
    let done = false;
    void drained.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(done, 'the stream is still running');
    await httpJson(server, 'DELETE', `/api/streams/${created.body.stream.id}`, undefined, TOKEN);
    await drained;
  } finally {
    await server.close();
  }
});

test.run();
