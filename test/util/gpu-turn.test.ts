import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { gpuTurnHolder, withGpuTurn } from '../../src/util/gpu-turn.js';
import { spawnWorker } from '../../src/util/worker-url.js';
import type { GpuTurnWorkerData } from './fixtures/gpu-turn-worker.js';

const start = (data: GpuTurnWorkerData): Worker => spawnWorker(import.meta.url, 'fixtures/gpu-turn-worker', { workerData: data });
const exited = (w: Worker) => once(w, 'exit').then(([code]) => code as number);
const counters = () => new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);

test('threads of one process take the WebGPU turn one at a time', async () => {
  const shared = counters();
  const workers = [0, 1, 2].map(() => start({ counters: shared, parties: 3, rounds: 6, holdMs: 4, mode: 'contend' }));
  assert.equal(await Promise.all(workers.map(exited)), [0, 0, 0]);
  const [inside, most, done] = new Int32Array(shared);
  assert.is(done, 18, 'every call ran');
  assert.is(most, 1, 'never two threads inside the turn at once');
  assert.is(inside, 0);
  assert.is(gpuTurnHolder(), undefined, 'the turn is free again');
});

test("a worker's own workers share its turn with the rest of the process", async () => {
  const shared = counters();
  const workers = [start({ counters: shared, parties: 3, rounds: 5, holdMs: 4, mode: 'nest' }), start({ counters: shared, parties: 3, rounds: 5, holdMs: 4, mode: 'contend' })];
  assert.equal(await Promise.all(workers.map(exited)), [0, 0]);
  const [, most, done] = new Int32Array(shared);
  assert.is(done, 15, 'the nested worker ran too');
  assert.is(most, 1);
});

test('a worker that exits holding the turn gives it back', async () => {
  const holder = start({ counters: counters(), parties: 1, rounds: 1, holdMs: 0, mode: 'hold-and-exit' });
  const [message] = await once(holder, 'message');
  assert.is(message, 'holding');
  await exited(holder);
  assert.is(gpuTurnHolder(), undefined, 'free after the exit');
  const shared = counters();
  const next = start({ counters: shared, parties: 1, rounds: 2, holdMs: 1, mode: 'contend' });
  assert.is(await exited(next), 0);
  assert.is(new Int32Array(shared)[2], 2, 'the next worker got the turn');
});

test('the main thread never waits for the turn', async () => {
  let ran = false;
  const error = await withGpuTurn(async () => (ran = true)).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(String(error?.message), /only worker threads/);
  assert.not.ok(ran);
});

test.run();
