/**
 * NativeCallQueue: one call at a time on a native handle, in order; a call made while none is in flight reaches the
 * handle inside run(), before the caller's next line (the generator draws the next step's noise right after asking
 * for a forward: the forward must already be with the addon by then).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NativeCallQueue } from '../../src/engine/native/call-queue.js';
import { SinkstreamError } from '../../src/errors.js';

/** A promise with its resolve and reject in hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('a call made while none is in flight reaches the handle before run() returns', async () => {
  const q = new NativeCallQueue('handle', 'test handle');
  const started: string[] = [];
  const p = q.run(async (h) => {
    started.push(h);
    return 1;
  });
  assert.equal(started, ['handle'], 'started inside run()');
  assert.is(await p, 1);
  // once it has settled, the next call starts at once again
  const p2 = q.run(() => started.push('second'));
  assert.equal(started, ['handle', 'second']);
  await p2;
});

test('calls made while one is in flight wait for it and run in order, one at a time', async () => {
  const q = new NativeCallQueue({ id: 0 }, 'test handle');
  const gates = [deferred<void>(), deferred<void>(), deferred<void>()];
  const events: string[] = [];
  let running = 0;
  const call = (i: number) =>
    q.run(async () => {
      running++;
      assert.is(running, 1, 'one call at a time');
      events.push(`start ${i}`);
      await gates[i].promise;
      events.push(`end ${i}`);
      running--;
      return i;
    });
  const calls = [call(0), call(1), call(2)];
  assert.equal(events, ['start 0'], 'the first at once, the others queued');
  gates[2].resolve();
  gates[1].resolve();
  await new Promise((r) => setImmediate(r));
  assert.equal(events, ['start 0'], 'still waiting for the first');
  gates[0].resolve();
  assert.equal(await Promise.all(calls), [0, 1, 2]);
  assert.equal(events, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
});

test('a call that throws, at once or later, rejects with a SinkstreamError naming the handle; later calls still run', async () => {
  const q = new NativeCallQueue({ id: 0 }, 'test handle');
  const now = q.run(() => {
    throw new Error('bad argument');
  });
  const later = q.run(async () => {
    throw new Error('device fault');
  });
  const after = q.run(() => 7);
  for (const [p, message] of [
    [now, 'bad argument'],
    [later, 'device fault'],
  ] as const) {
    try {
      await p;
      assert.unreachable('rejects');
    } catch (e) {
      assert.instance(e, SinkstreamError);
      assert.is((e as SinkstreamError).code, 'ERR_ENGINE');
      assert.match((e as Error).message, `test handle: ${message}`);
    }
  }
  assert.is(await after, 7);
  const again: number[] = [];
  const p = q.run(() => again.push(1));
  assert.equal(again, [1], 'after failures the queue is idle: the next call starts at once');
  await p;
});

test('close waits for the call in flight, then frees the handle once; calls after it reject with ERR_CLOSED', async () => {
  const q = new NativeCallQueue('h', 'test handle');
  const gate = deferred<void>();
  const events: string[] = [];
  const inFlight = q.run(async () => {
    await gate.promise;
    events.push('call done');
  });
  const closing = q.close(() => events.push('destroyed'));
  const refused = q.run(() => events.push('ran after close'));
  refused.catch(() => undefined); // awaited below
  setImmediate(() => gate.resolve());
  await Promise.all([inFlight, closing, q.close(() => events.push('destroyed twice'))]);
  assert.equal(events, ['call done', 'destroyed']);
  try {
    await refused;
    assert.unreachable('rejects');
  } catch (e) {
    assert.is((e as SinkstreamError).code, 'ERR_CLOSED');
  }
});

test.run();
