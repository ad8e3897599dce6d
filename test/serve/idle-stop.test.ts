/**
 * A stream nobody watches stops after serve.idleStopSeconds (from when its last viewer left, or from
 * its creation if none ever joined); a recording stream keeps going; GET /api/streams says, for each
 * stream, its viewers, whether it records and when it will idle-stop or why it will not.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { VirtualClock } from '../../scheduler/clock.js';
import { IdleStop } from '../../src/serve/idle-stop.js';
import { LiveStream } from '../../src/serve/live-stream.js';
import { ServerMetrics } from '../../src/serve/metrics.js';
import type { ViewerSocket } from '../../src/serve/viewer-hub.js';
import { ManualTimers } from '../realtime/helpers/virtual-time.js';
import { tempDir } from '../encode/helpers.js';
import { httpJson, startTestServer, testConfig, TestClient } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';

function virtualTime() {
  const clock = new VirtualClock(0);
  return { clock, timers: new ManualTimers(clock) };
}

test('IdleStop: counts from the start when nobody joins, from the last viewer leaving otherwise; recording or viewers cancel; 0 = never', () => {
  const { clock, timers } = virtualTime();
  let fired = 0;
  const idle = new IdleStop(30_000, () => clock.now(), timers, () => fired++);
  idle.update(0, false);
  assert.equal(idle.state(), { pending: true, at: 30_000 });
  clock.set(10_000);
  idle.update(1, false); // a viewer joins at 10 s
  assert.equal(idle.state(), { pending: false, reason: 'watched' });
  assert.is(timers.fireNext(), false, 'no timer while watched');
  clock.set(50_000);
  idle.update(0, false); // the last viewer leaves at 50 s
  idle.update(0, false); // a second report does not restart the count
  assert.equal(idle.state(), { pending: true, at: 80_000 });
  assert.ok(timers.fireNext());
  assert.is(clock.now(), 80_000);
  assert.is(fired, 1);
  assert.equal(idle.state(), { pending: false, reason: 'stopped' });

  const recording = new IdleStop(30_000, () => clock.now(), timers, () => fired++);
  recording.update(0, true);
  assert.equal(recording.state(), { pending: false, reason: 'recording' });
  recording.update(0, false); // the recording failed: now it counts
  assert.equal(recording.state(), { pending: true, at: 110_000 });
  recording.dispose();
  assert.is(timers.fireNext(), false, 'disposed: its timer is cleared');

  const never = new IdleStop(0, () => clock.now(), timers, () => fired++);
  never.update(0, false);
  assert.equal(never.state(), { pending: false, reason: 'disabled' });
  assert.is(timers.fireNext(), false);
  assert.is(fired, 1);
});

class Viewer implements ViewerSocket {
  bufferedAmount = 0;
  readyState = 1;
  send(): void {}
  close(): void {
    this.readyState = 3;
  }
  terminate(): void {
    this.readyState = 3;
  }
}

test('LiveStream on a virtual clock: an unwatched stream stops once the grace has passed since its last viewer left', async () => {
  const { clock, timers } = virtualTime();
  const stream = await LiveStream.start({
    id: 'idle',
    config: testConfig({ serve: { idleStopSeconds: 30 } }),
    createdAt: 0,
    record: false,
    createGenerator: async () => new StepsGenerator(1),
    metrics: new ServerMetrics(() => []),
    now: () => clock.now(),
    timers,
  });
  const ended = new Promise<string>((r) => stream.once('ended', r));
  try {
    assert.is(stream.info().idleStop.pending, true);
    clock.set(20_000);
    const viewer = new Viewer();
    stream.hub.add(viewer);
    assert.equal(stream.info().idleStop, { pending: false, reason: 'watched' });
    assert.is(stream.info().viewers, 1);
    clock.set(100_000);
    stream.hub.remove(viewer);
    const info = stream.info().idleStop;
    assert.ok(info.pending && info.inSeconds === 30, JSON.stringify(info));
    assert.ok(timers.fireNext());
    assert.is(clock.now(), 130_000, 'stopped 30 s after the last viewer left, not after the start');
    assert.is(await ended, 'idle: no viewer for 30 s');
  } finally {
    await stream.stop();
  }
});

test('serve: GET /api/streams shows viewers, recording and the idle stop; the unwatched stream stops and frees its place, the recording one runs on', async () => {
  const dir = tempDir('idle-stop');
  const server = await startTestServer(
    { serve: { idleStopSeconds: 2, maxStreams: 2, recordDir: dir } },
    { scheduling: false, createGenerator: async () => new StepsGenerator(5) },
  );
  try {
    // The recording one first: the unwatched one's 2 s count then starts as late as possible.
    const recorded = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background', record: true });
    assert.is(recorded.status, 201, JSON.stringify(recorded.body));
    const unwatched = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' });
    assert.is(unwatched.status, 201, JSON.stringify(unwatched.body));
    const full = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' });
    assert.is(full.status, 503, 'both places taken');

    const listed = (await httpJson(server, 'GET', '/api/streams')).body.streams as Array<Record<string, any>>;
    const a = listed.find((s) => s.id === unwatched.body.stream.id)!;
    const b = listed.find((s) => s.id === recorded.body.stream.id)!;
    assert.is(a.viewers, 0);
    assert.is(a.records, false);
    assert.is(a.idleStop.pending, true);
    assert.ok(a.idleStop.inSeconds > 0 && a.idleStop.inSeconds <= 2, JSON.stringify(a.idleStop));
    assert.ok(Number.isFinite(Date.parse(a.idleStop.at)));
    assert.is(b.records, true);
    assert.equal(b.idleStop, { pending: false, reason: 'recording' });

    // A viewer holds the stream past the grace; when it leaves, the count starts again.
    const client = await TestClient.connect(server);
    client.send({ type: 'watch', stream: a.id, req: 1 });
    await client.nextOf('watching');
    const watched = (await httpJson(server, 'GET', `/api/streams/${a.id}`)).body.stream;
    assert.is(watched.viewers, 1);
    assert.equal(watched.idleStop, { pending: false, reason: 'watched' });
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(server.streams.get(a.id), 'a watched stream runs on past the grace');
    client.close();

    const deadline = Date.now() + 20_000;
    while (server.streams.get(a.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(server.streams.get(a.id), 'the unwatched stream stopped');
    assert.ok(server.streams.get(b.id), 'the recording stream runs on');
    const again = await httpJson(server, 'POST', '/api/streams', { prompt: 'a blue square bouncing on a dark blue background' });
    assert.is(again.status, 201, `its place is free again: ${JSON.stringify(again.body)}`);
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
