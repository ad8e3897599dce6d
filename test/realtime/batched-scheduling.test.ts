/**
 * Streams batched by the runtime scheduler (engine.maxBatch through RuntimeScheduler's maxBatch), on virtual time:
 * admission prices a batch of B streams from the cost model (its per-call overhead paid once), so a device where
 * batching pays takes streams it refuses without batching, and one where it does not pay takes none more; streams
 * whose blocks are due together get their turns as one job, run as one batch on a fake batching device, keep every
 * deadline; a stream that leaves mid-batch does not hold up the others.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../scheduler/clock.js';
import { createScheduler, type StreamSpec } from '../../scheduler/index.js';
import { RuntimeScheduler, type ScheduledStream, type Turn } from '../../src/realtime/runtime-scheduler.js';
import { runScheduledBlock } from '../../src/realtime/scheduled-block.js';
import type { FrameBlock } from '../../src/loop/types.js';
import { ManualTimers, costModel, runUntil, schedulerConfig, spec } from './helpers/virtual-time.js';

/** A forward alone 10 ms, of which 9 ms per call (batching pays: B blocks' forward = 9 + B ms). */
const PAYS = { overheadMs: 9, perItemMs: 1 };
/** A forward alone 10 ms, all of it per item (batching gains nothing). */
const DOES_NOT_PAY = { overheadMs: 0, perItemMs: 10 };

/** A stream held at 4 steps (no lower rung): admitted at full quality or refused. */
function fixed(id: string, frames?: number): StreamSpec {
  return { ...spec(id, frames === undefined ? {} : { frames }), stepLadder: [4] };
}

/** How many streams of `fixed` the scheduler admits (whole blocks, as the runtime plans them), of 8 asked. */
function admitted(coefficients: typeof PAYS, maxBatch: number): number {
  const scheduler = createScheduler({
    clock: new VirtualClock(0),
    costModel: costModel('dev', coefficients),
    devices: [{ id: 'dev', maxBatch }],
    config: schedulerConfig(),
    granularity: 'block',
  });
  let n = 0;
  for (let i = 0; i < 8; i++) if (scheduler.admit(fixed(`s${i}`), 0).admitted) n++;
  return n;
}

test('admission: batching that pays admits more streams (maxBatch 4: 5 at 50 ms of a 100 ms period alone); without it, or where it does not pay, one', () => {
  // alone: a block = 5 forwards of 10 ms = 50 ms every 100 ms; 90% of the device holds one stream
  assert.is(admitted(PAYS, 1), 1);
  // batched by 4: 5 forwards of 13 ms shared by 4 = 16.25 ms a stream every 100 ms: 5 streams fit in 90 ms, not 6
  assert.is(admitted(PAYS, 4), 5);
  // by 2: 5 forwards of 11 ms shared by 2 = 27.5 ms a stream: 3 fit
  assert.is(admitted(PAYS, 2), 3);
  assert.is(admitted(DOES_NOT_PAY, 4), 1, 'a batch of B costs B forwards: no more streams');
});

/**
 * A device on the virtual clock whose blocks batch: every next() issued in the same turn of the event loop runs as
 * one batch, its forward k joining the blocks that still have a forward k, each forward 9 ms + 1 ms an item.
 */
class BatchingDevice {
  readonly batches: number[] = [];
  private waiting: Array<{ steps: number; index: number; resolve: (b: FrameBlock) => void }> = [];

  constructor(private readonly clock: VirtualClock) {}

  generator(): { blocks: number; next(o?: { steps?: number }): Promise<FrameBlock> } {
    const g = {
      blocks: 0,
      next: (o: { steps?: number } = {}) =>
        new Promise<FrameBlock>((resolve) => {
          this.waiting.push({ steps: o.steps ?? 4, index: g.blocks++, resolve });
          if (this.waiting.length === 1) setImmediate(() => this.run());
        }),
    };
    return g;
  }

  private run(): void {
    const batch = this.waiting.splice(0);
    let ms = 0;
    for (let k = 0; k <= Math.max(...batch.map((b) => b.steps)); k++) ms += 9 + batch.filter((b) => b.steps >= k).length;
    this.clock.advance(ms);
    this.batches.push(batch.length);
    for (const b of batch) {
      b.resolve({
        index: b.index,
        firstFrame: b.index * 3,
        width: 1,
        height: 1,
        frames: Array.from({ length: 3 }, () => new Uint8Array(3)),
        steps: b.steps,
        timings: { totalMs: ms, engineMs: ms, decodeMs: 0 },
        cache: [],
        queryPositions: [],
      });
    }
  }
}

function runtimeOn(maxBatch: number) {
  const clock = new VirtualClock(0);
  const timers = new ManualTimers(clock);
  const runtime = new RuntimeScheduler({ costModel: costModel('dev', PAYS), device: 'dev', maxBatch, config: schedulerConfig(), clock, timers });
  return { clock, timers, runtime, device: new BatchingDevice(clock) };
}

/** A stream's loop on the device; its turns are kept. */
function loop(stream: ScheduledStream, device: BatchingDevice, turns: Turn[]): Promise<void> {
  const g = device.generator();
  return (async () => {
    for (;;) {
      const r = await runScheduledBlock(stream, { next: (o) => g.next(o) });
      if (!r) return;
      turns.push(r.turn);
    }
  })();
}

test('three streams admitted by batching run as batches of three: one job, turns together, every block at 4 steps and on time', async () => {
  const { clock, timers, runtime, device } = runtimeOn(4);
  const turns: Turn[][] = [[], [], []];
  const loops: Promise<void>[] = [];
  for (let i = 0; i < 3; i++) {
    const a = runtime.admit(fixed(`s${i}`, 60));
    assert.ok(a.admitted, `stream ${i} admitted`);
    if (a.admitted) loops.push(loop(a.stream, device, turns[i]));
  }
  await runUntil(clock, timers, 10_000);
  await Promise.all(loops);
  for (const t of turns) assert.is(t.length, 20);
  // block 0: the first stream's ran alone (planned as it was admitted), the other two's together after it; from
  // block 1 on the three are due together (released at the same instants) and every job holds all three
  assert.is(turns[0][0].job.items.length, 1);
  assert.is(turns[1][0].job.id, turns[2][0].job.id);
  for (let b = 1; b < 20; b++) {
    const jobs = new Set(turns.map((t) => t[b].job.id));
    assert.is(jobs.size, 1, `block ${b}: one job for the three streams`);
    assert.is(turns[0][b].job.items.length, 3);
  }
  assert.equal(device.batches, [1, 2, ...Array.from({ length: 19 }, () => 3)]);
  assert.equal(runtime.jobCounts, { jobs: 21, blocks: 60 }, 'what /metrics reports as blocks per job');
  for (let i = 0; i < 3; i++) {
    const m = runtime.scheduler.metrics(`s${i}`, Infinity);
    assert.is(m.missedDeadlines, 0, `s${i} misses`);
    assert.equal(m.blocksBySteps, { 4: 20 });
  }
  runtime.close();
});

test('with maxBatch 1 the same streams are not batched: one block a job, the second stream refused at 4 steps', () => {
  const { runtime } = runtimeOn(1);
  assert.ok(runtime.admit(fixed('s0', 60)).admitted);
  const second = runtime.admit(fixed('s1', 60));
  assert.not.ok(second.admitted);
  runtime.close();
});

test('a stream that leaves while its batch runs: the others finish the batch and go on alone together, on time', async () => {
  const { clock, timers, runtime, device } = runtimeOn(4);
  const turns: Turn[][] = [[], [], []];
  const streams: ScheduledStream[] = [];
  const loops: Promise<void>[] = [];
  for (let i = 0; i < 3; i++) {
    const a = runtime.admit(fixed(`s${i}`, 60));
    if (!a.admitted) throw new Error('not admitted');
    streams.push(a.stream);
    loops.push(loop(a.stream, device, turns[i]));
  }
  await runUntil(clock, timers, 1000);
  const leftAfter = turns[1].length;
  streams[1].leave('viewer left');
  await runUntil(clock, timers, 10_000);
  await Promise.all(loops);
  assert.is(turns[0].length, 20);
  assert.is(turns[2].length, 20);
  assert.ok(turns[1].length <= leftAfter + 1, `the stream that left ran ${turns[1].length} blocks`);
  const later = turns[0].slice(leftAfter + 1);
  assert.ok(later.length > 5);
  for (const t of later) assert.equal(t.job.items.map((i) => i.streamId).sort(), ['s0', 's2']);
  for (const id of ['s0', 's2']) assert.is(runtime.scheduler.metrics(id, Infinity).missedDeadlines, 0, id);
  runtime.close();
});

test.run();
