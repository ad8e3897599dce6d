import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { streamBatchBatching, streamsBatching } from '../../scheduler/batching.js';

const b = (index: number, step: number, steps = 4) => ({ index, step, steps });

test('streams batching: only the oldest unfinished block of a stream may run', () => {
  assert.equal(streamsBatching.runnable([b(0, 2), b(1, 0)]).map((x) => x.index), [0]);
  assert.equal(streamsBatching.runnable([]), []);
});

test('stream batch: later blocks run while they stay a step behind; clean passes wait for the block before', () => {
  assert.equal(streamBatchBatching.runnable([b(0, 3), b(1, 2), b(2, 0)]).map((x) => x.index), [0, 1, 2]);
  assert.equal(streamBatchBatching.runnable([b(0, 2), b(1, 2)]).map((x) => x.index), [0]);
  // Block 1 (3 steps) has finished denoising: its clean pass waits for block 0's.
  assert.equal(streamBatchBatching.runnable([b(0, 4, 4), b(1, 3, 3)]).map((x) => x.index), [0]);
});

test.run();
