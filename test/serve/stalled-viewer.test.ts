/**
 * Real WebSockets on loopback: a viewer whose socket is paused (it never reads) fills the kernel's
 * buffers, then skips media just under the hard cap; after serve.stalledViewerSeconds of that it is
 * closed with 4008. A viewer that reads stays connected and keeps getting media.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { ViewerHub, type ViewerSocket } from '../../src/serve/viewer-hub.js';
import { CloseCode } from '../../src/serve/protocol.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a viewer that never reads is closed with 4008 once stalled; a reading viewer stays', async () => {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const serverSockets: WebSocket[] = [];
  const closeCodes = new Map<WebSocket, number | undefined>();
  wss.on('connection', (ws) => {
    const close = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer) => {
      closeCodes.set(ws, code);
      close(code, reason);
    };
    serverSockets.push(ws);
  });
  const connect = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const reader = await connect();
  let readerBytes = 0;
  reader.on('message', (data: Buffer) => (readerBytes += data.length));
  const stuck = await connect();
  stuck.pause(); // never reads: the kernel's buffers fill, then the server's backlog grows
  let stuckClosed = false;
  stuck.on('close', () => (stuckClosed = true));
  stuck.on('error', () => undefined);
  while (serverSockets.length < 2) await sleep(10);
  const [readerSide, stuckSide] = serverSockets;

  const dropped: ViewerSocket[] = [];
  const limits = { highWaterBytes: 256 << 10, hardCapBytes: 256 << 20, stalledMs: 1000 };
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 }, { dropped: (s) => dropped.push(s) });
  hub.add(readerSide);
  hub.add(stuckSide);
  hub.setInit({ data: Buffer.alloc(100), codec: 'avc1.42c00c' }, 'start');
  const fragment = Buffer.alloc(128 << 10, 7);
  try {
    // 128 KiB keyframe fragments every 20 ms (6.4 MB/s) until the stuck viewer is dropped.
    const deadline = Date.now() + 60_000;
    let seq = 0;
    while (!dropped.includes(stuckSide) && Date.now() < deadline) {
      hub.broadcast({ data: fragment, keyframe: true, samples: 1, seq: seq++ });
      assert.ok(stuckSide.bufferedAmount <= limits.hardCapBytes, 'held under the hard cap by skipping');
      await sleep(20);
    }
    assert.ok(dropped.includes(stuckSide), `the stalled viewer was not dropped (backlog ${stuckSide.bufferedAmount} bytes)`);
    assert.is(closeCodes.get(stuckSide), CloseCode.TOO_SLOW);
    // The reader is still there and still gets media.
    const before = readerBytes;
    for (let i = 0; i < 10; i++) {
      hub.broadcast({ data: fragment, keyframe: true, samples: 1, seq: seq++ });
      await sleep(20);
    }
    const until = Date.now() + 10_000;
    while (readerBytes === before && Date.now() < until) await sleep(20);
    assert.ok(readerBytes > before, 'the reading viewer still gets media');
    assert.ok(hub.has(readerSide));
    assert.is(closeCodes.get(readerSide), undefined);
    assert.is(reader.readyState, WebSocket.OPEN);
    // The stuck connection is gone on the server (closed, cut after the close grace); the client sees
    // its end once it reads again.
    const gone = Date.now() + 10_000;
    while (stuckSide.readyState !== WebSocket.CLOSED && Date.now() < gone) await sleep(20);
    assert.is(stuckSide.readyState, WebSocket.CLOSED);
    stuck.resume();
    while (!stuckClosed && Date.now() < gone + 10_000) await sleep(20);
    assert.ok(stuckClosed, 'the stuck client saw its connection end');
  } finally {
    reader.terminate();
    stuck.terminate();
    for (const ws of serverSockets) ws.terminate();
    wss.close();
    await new Promise((r) => server.close(r));
  }
});

test.run();
