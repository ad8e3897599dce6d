import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MessageChannel } from 'node:worker_threads';
import { isSinkstreamError, type SinkstreamError } from '../../src/errors.js';
import { spawnWorker } from '../../src/util/worker-url.js';
import { RpcClient, serveRpc } from '../../src/util/worker-rpc.js';
import type { TestApi } from './fixtures/rpc-api.js';
import { rejection } from '../helpers/assertions.js';

const start = (workerData?: unknown) =>
  RpcClient.start<TestApi, { pid: string }>(spawnWorker(import.meta.url, 'fixtures/rpc-worker', { workerData }), 'the test worker');

test('calls by name; buffers move both ways in transfer lists; events arrive before their reply', async () => {
  const { client, ready } = await start();
  try {
    assert.equal(ready, { pid: 'worker' });
    const values = Float32Array.of(1, 2, 3);
    const doubled = await client.call('double', [values], [values.buffer]);
    assert.equal([...doubled], [2, 4, 6]);
    assert.is(values.byteLength, 0, "the caller's buffer moved to the worker");
    const seen: unknown[] = [];
    client.on('note', (v) => seen.push(v));
    const reply = client.call('announce', ['x']).then((v) => seen.push(v));
    await reply;
    assert.equal(seen, ['before x', 'x']);
  } finally {
    await client.close();
  }
});

test("errors cross with their stable code; any other error is ERR_ENGINE with its message", async () => {
  const { client } = await start();
  try {
    const prompt = await rejection(client.call('fail', ['ERR_PROMPT', 'unknown word']));
    assert.equal([prompt.code, prompt.message], ['ERR_PROMPT', 'unknown word']);
    const other = await rejection(client.call('fail', [null, 'boom']));
    assert.equal([other.code, other.message], ['ERR_ENGINE', 'boom']);
    assert.equal(await client.call('announce', ['still serving']), 'still serving');
  } finally {
    await client.close();
  }
});

test("a failed start rejects with the start's own code, and the worker is gone", async () => {
  const e = await rejection(start({ failStart: 'ERR_MODEL_FILE' }));
  assert.equal([e.code, e.message], ['ERR_MODEL_FILE', 'no weights here']);
});

test('a worker that exits fails the pending call and every later one with ERR_ENGINE naming the cause', async () => {
  const { client } = await start();
  const died = await rejection(client.call('exit', [3]));
  assert.is(died.code, 'ERR_ENGINE');
  assert.match(died.message, /^the test worker died: exit code 3$/);
  assert.ok(client.dead);
  assert.is((await rejection(client.call('announce', ['late']))).message, died.message);
  await client.close();
});

test("close() runs the server's close, then calls fail with ERR_CLOSED; idempotent", async () => {
  const { port1, port2 } = new MessageChannel();
  let closed = false;
  serveRpc<Pick<TestApi, 'announce' | 'close'>>(port1, { announce: (t) => t, close: () => void (closed = true) });
  const client = new RpcClient<Pick<TestApi, 'announce' | 'close'>>(port2, 'the port');
  assert.is(await client.call('announce', ['over a port']), 'over a port');
  await Promise.all([client.close(), client.close()]);
  assert.ok(closed, "the server's close ran");
  const e = await rejection(client.call('announce', ['after']));
  assert.equal([e.code, e.message], ['ERR_CLOSED', 'the port is closed']);
  assert.not.ok(client.dead, 'closed, not dead');
});

test.run();
