/**
 * What bounds the server's memory under hostile load (tools/bench/serve-memory.ts measures it):
 * creates the scheduler cannot take start no generator thread and set-ups never overlap; a
 * connection that never sends a request is closed; WebSocket messages are capped and never inflated.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import WebSocket from 'ws';
import { fixedForwardCalibration, httpJson, startTestServer, TestClient } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';

/** Every forward takes `forwardMs`, the rest of a block nothing. */
function calibration(forwardMs: number) {
  return async () => fixedForwardCalibration(forwardMs);
}

test('creates at once that the scheduler cannot take start no generator: set-ups run one at a time, the scheduler asked first', async () => {
  let started = 0;
  let running = 0;
  let mostAtOnce = 0;
  const createGenerator = async () => {
    started++;
    mostAtOnce = Math.max(mostAtOnce, ++running);
    await new Promise((r) => setTimeout(r, 50)); // a thread loading the model
    running--;
    return new StepsGenerator(40);
  };
  // 16 fps with 40 ms forwards: one stream needs 0.64 of the device even at 2 steps, so one fits.
  const server = await startTestServer({ scheduler: { targetFps: 16 }, serve: { maxStreams: 4 } }, { scheduling: { calibrate: calibration(40) }, createGenerator });
  try {
    const first = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' });
    assert.is(first.status, 201, JSON.stringify(first.body));
    const at = started;
    const burst = await Promise.all(Array.from({ length: 3 }, () => httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' })));
    assert.equal(burst.map((r) => r.status), [503, 503, 503]);
    assert.ok(burst.every((r) => /the scheduler refused the stream/.test(r.body.error.message)));
    assert.is(started - at, 0, 'a refused stream starts no generator');
    const stopped = await httpJson(server, 'DELETE', `/api/streams/${first.body.stream.id}`);
    assert.is(stopped.status, 200);
    // Room for one again: of four at once, one is set up and three are refused before any set-up.
    const again = await Promise.all(Array.from({ length: 4 }, () => httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' })));
    assert.equal(again.map((r) => r.status).sort(), [201, 503, 503, 503]);
    assert.is(started, 2);
    assert.is(mostAtOnce, 1, 'set-ups never overlap');
  } finally {
    await server.close();
  }
});

test('an HTTP connection that sends nothing is closed after idleConnectionMs; a WebSocket is not', async () => {
  const server = await startTestServer({}, { scheduling: false, createGenerator: async () => new StepsGenerator(5), idleConnectionMs: 300 });
  try {
    const idle = net.connect(server.port, '127.0.0.1');
    idle.on('error', () => undefined);
    const closed = new Promise<void>((r) => idle.once('close', () => r()));
    const client = await TestClient.connect(server);
    const t0 = Date.now();
    const timedOut = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 10_000))]);
    assert.not.ok(timedOut, 'the idle connection is still open after 10 s');
    assert.ok(Date.now() - t0 >= 250, 'not before its time');
    idle.destroy();
    await new Promise((r) => setTimeout(r, 600));
    client.send({ type: 'ping', req: 7 });
    assert.is((await client.nextOf('pong')).req, 7, 'the WebSocket, quiet for longer than that, is still served');
    client.close();
  } finally {
    await server.close();
  }
});

test('WebSocket messages: no compression is negotiated, and one over serve.maxMessageBytes closes the connection (1009) unread', async () => {
  const server = await startTestServer({ serve: { maxMessageBytes: 1024 } }, { scheduling: false, createGenerator: async () => new StepsGenerator(5) });
  try {
    const ws = new WebSocket(TestClient.url(server), { perMessageDeflate: true });
    await new Promise((r) => ws.once('open', r));
    assert.is(ws.extensions, '', 'permessage-deflate refused');
    const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    ws.send(Buffer.alloc(4 << 20, 0x61), { binary: false });
    assert.is(await code, 1009);
  } finally {
    await server.close();
  }
});

test.run();
