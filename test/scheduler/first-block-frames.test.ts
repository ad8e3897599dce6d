/**
 * A streaming decoder's first block gives fewer video frames (TAEHV, Wan VAE: 4F - 3): the stream spec
 * says so, and the scheduler's timeline places every later block where the generator's frames are,
 * instead of running that many frames ahead (virtual time).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SchedulerError } from '../../scheduler/errors.js';
import { blockVideoFrames } from '../../scheduler/scheduler.js';
import type { StreamSpec } from '../../scheduler/types.js';
import { driver, stream } from './helpers/drive.js';

/** 3 latent frames per block, 4 video frames each: 12 per block, 9 for the first; 30 fps. */
function taehvStream(id: string, frames: number, firstBlockVideoFrames?: number): StreamSpec {
  return { ...stream(id, { frames }), videoFramesPerLatentFrame: 4, ...(firstBlockVideoFrames !== undefined ? { firstBlockVideoFrames } : {}) };
}

function blockStarts(d: ReturnType<typeof driver>, id: string): Map<number, number> {
  const starts = new Map<number, number>();
  for (const plan of d.plans) for (const job of plan.jobs) for (const item of job.items) if (item.streamId === id) starts.set(item.block, item.firstFrame);
  return starts;
}

test('the first block of 9 frames: later blocks start at frames 9, 21, 33; the stream ends after exactly its frames', () => {
  const d = driver({});
  const decision = d.admit(taehvStream('t', 9 + 3 * 12, 9));
  assert.is(decision.admitted, true);
  d.run(5000);
  const starts = blockStarts(d, 't');
  assert.equal([...starts.entries()].sort((a, b) => a[0] - b[0]), [[0, 0], [1, 9], [2, 21], [3, 33]]);
  const m = d.scheduler.metrics('t', 5000);
  assert.is(m.state, 'finished');
  assert.is(m.framesDelivered, 45);
  assert.is(m.missedDeadlines, 0);
  assert.equal(m.blocksBySteps, { '4': 4 });
});

test('without firstBlockVideoFrames every block counts 12 frames (the spec as before)', () => {
  const d = driver({});
  assert.is(d.admit(taehvStream('u', 48)).admitted, true);
  d.run(5000);
  assert.equal([...blockStarts(d, 'u').values()].sort((a, b) => a - b), [0, 12, 24, 36]);
  assert.equal([blockVideoFrames({ videoFramesPerLatentFrame: 4 }, 0, 3), blockVideoFrames({ videoFramesPerLatentFrame: 4, firstBlockVideoFrames: 9 }, 0, 3), blockVideoFrames({ videoFramesPerLatentFrame: 4, firstBlockVideoFrames: 9 }, 1, 3)], [12, 9, 12]);
});

test('a malformed firstBlockVideoFrames is bad input', () => {
  const d = driver({});
  for (const bad of [0, 2.5, -3]) {
    let error: unknown;
    try {
      d.admit(taehvStream(`bad${bad}`, 30, bad));
    } catch (e) {
      error = e;
    }
    assert.instance(error, SchedulerError);
    assert.match((error as Error).message, /firstBlockVideoFrames/);
  }
});

test.run();
