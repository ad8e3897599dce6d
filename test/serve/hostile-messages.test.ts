/**
 * 10,000 malformed or hostile control messages on one connection: each gets an error reply, the
 * connection stays up, no stream is created, and the server keeps serving everyone.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import { startTestServer, TestClient } from './helpers/server-fixture.js';

const COUNT = 10_000;

/** A deterministic stream of bad messages: each is [payload, isBinary]. */
function hostileMessages(n: number): Array<[string | Buffer, boolean]> {
  let seed = 12345;
  const rnd = (k: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % k;
  const long = 'x'.repeat(1500);
  const makers: Array<() => [string | Buffer, boolean]> = [
    () => [Buffer.from(Array.from({ length: 1 + rnd(200) }, () => rnd(256))), true], // binary frame
    () => [Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x7b]).toString('latin1'), false], // not JSON
    () => [Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) as unknown as string, false], // invalid UTF-8 in a text frame
    () => ['', false],
    () => ['null', false],
    () => ['[1,2,3]', false],
    () => ['"create"', false],
    () => [String(rnd(1e9)), false],
    () => ['{"type":', false],
    () => [JSON.stringify({}), false],
    () => [JSON.stringify({ type: 'launch-missiles' }), false],
    () => [JSON.stringify({ type: 'create' }), false],
    () => [JSON.stringify({ type: 'create', prompt: '' }), false],
    () => [JSON.stringify({ type: 'create', prompt: long }), false],
    () => [JSON.stringify({ type: 'create', prompt: 'a red circle bouncing on a black background', overrides: { model: { weights: '/etc/passwd' } } }), false],
    () => [JSON.stringify({ type: 'create', prompt: 'a red circle bouncing on a black background', overrides: { engine: { provider: 'webgpu' } } }), false],
    () => [JSON.stringify({ type: 'create', prompt: 'a red circle bouncing on a black background', overrides: { cache: { window: -5 } } }), false],
    () => [JSON.stringify({ type: 'create', prompt: 'a red circle bouncing on a black background', overrides: { cache: { window: 1e12 } } }), false],
    () => [JSON.stringify({ type: 'create', prompt: 'a red circle bouncing on a black background', overrides: { cache: { sink: 10, window: 11 } } }), false],
    () => [JSON.stringify({ type: 'create', prompt: 'a red circle bouncing on a black background', record: 'yes' }), false],
    () => [JSON.stringify({ type: 'create', prompt: 'a red circle bouncing on a black background', extra: 1 }), false],
    () => ['{"type":"create","prompt":"a red circle bouncing on a black background","__proto__":{"polluted":true}}', false],
    () => ['{"type":"watch","stream":"x","constructor":{"prototype":{"polluted":true}}}', false],
    () => [JSON.stringify({ type: 'watch', stream: '../../etc/passwd' }), false],
    () => [JSON.stringify({ type: 'watch', stream: 'nosuchstream' }), false],
    () => [JSON.stringify({ type: 'watch', stream: 42 }), false],
    () => [JSON.stringify({ type: 'stop', stream: 'nosuchstream' }), false],
    () => [JSON.stringify({ type: 'prompt', stream: 'nosuchstream', prompt: 'a red circle bouncing on a black background' }), false],
    () => [JSON.stringify({ type: 'retune', stream: 'nosuchstream', cache: { window: 9 } }), false],
    () => [JSON.stringify({ type: 'retune', stream: 'nosuchstream', cache: { policy: 'everything' } }), false],
    () => [JSON.stringify({ type: 'ping', req: -1 }), false],
    () => [JSON.stringify({ type: 'ping', req: 'abc' }), false],
    () => ['['.repeat(1000) + ']'.repeat(1000), false],
    () => ['{"a":'.repeat(300) + '1' + '}'.repeat(300), false],
    () => [JSON.stringify({ type: 'list', req: 1, more: [1, 2, 3] }), false],
  ];
  return Array.from({ length: n }, (_, i) => makers[i % makers.length]());
}

test(`${COUNT} malformed or hostile messages: an error reply each, the connection stays, the server serves`, async () => {
  const server = await startTestServer();
  try {
    const attacker = await TestClient.connect(server);
    await attacker.nextOf('hello');
    const messages = hostileMessages(COUNT);
    const t0 = performance.now();
    for (const [payload, binary] of messages) attacker.ws.send(payload, { binary });
    let errors = 0;
    while (errors < COUNT) {
      const r = await attacker.next(undefined, 30_000);
      assert.is(r.kind, 'text');
      if (r.kind === 'text') {
        assert.is(r.message.type, 'error', JSON.stringify(r.message));
        errors++;
      }
    }
    const ms = performance.now() - t0;
    console.log(`hostile: ${COUNT} bad messages answered with ${errors} errors in ${Math.round(ms)} ms`);
    assert.is(attacker.closed, null, 'connection still open');
    attacker.send({ type: 'ping', req: 99 });
    assert.is((await attacker.nextOf('pong')).req, 99);
    attacker.send({ type: 'list', req: 100 });
    assert.equal((await attacker.nextOf('streams')).streams, [], 'no stream was created');
    assert.is(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');

    // others are served meanwhile
    const other = await TestClient.connect(server);
    await other.nextOf('hello');
    const page = await fetch(server.url);
    assert.is(page.status, 200);
    const metrics = await (await fetch(`${server.url}metrics`)).text();
    assert.match(metrics, /sinkstream_control_errors_total\{code="bad-message"\} \d+/);
    other.close();

    // a message over maxPayload closes that connection (1009), and only that one
    const big = await TestClient.connect(server);
    big.ws.send('x'.repeat(64 * 1024));
    assert.is((await big.closedWith()).code, 1009);
    attacker.send({ type: 'ping', req: 101 });
    assert.is((await attacker.nextOf('pong')).req, 101);
    attacker.close();
  } finally {
    await server.close();
  }
});

test('a client that floods without reading is cut off, not buffered without bound', async () => {
  const server = await startTestServer({ serve: { viewerHighWaterBytes: 1024, viewerHardCapBytes: 16 * 1024 } });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?v=1`);
    await new Promise((r) => ws.once('open', r));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause(); // never read the replies
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    // Each reply is ~100 bytes; the kernel takes a few MB on loopback before the server's own
    // queue grows, so keep going until the server hangs up (bounded).
    const bad = JSON.stringify({ type: 'watch', stream: 'nosuchstream' });
    let serverClosed = false;
    closed.then(() => (serverClosed = true));
    for (let i = 0; i < 300_000 && !serverClosed && ws.readyState === WebSocket.OPEN; i++) {
      ws.send(bad);
      if (i % 2000 === 0) await new Promise((r) => setTimeout(r, 2));
      if (i % 20_000 === 0 && server.connections === 0) break;
    }
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    assert.ok(code === 4008 || code === 1006, `closed with ${code}`);
    for (let i = 0; i < 100 && server.connections > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.is(server.connections, 0);
  } finally {
    await server.close();
  }
});

test.run();
