/**
 * choosePlacement (scheduler/placement.ts): pipeline or replicas from the calibrated costs of each setup,
 * on the expected load, with admission's own deadline test.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CostModel, SchedulerError } from '../../scheduler/index.js';
import { choosePlacement, type PlacementQuestion } from '../../scheduler/placement.js';

/** A device whose forward takes `forwardMs` whatever its shape and whose decode takes `decodeMs`. */
function flat(forwardMs: number, decodeMs: number) {
  return { overheadMs: forwardMs, perItemMs: 0, perTokenMs: 0, perTokenKeyMs: 0, decodeOverheadMs: decodeMs, decodePerLatentFrameMs: 0, encodeOverheadMs: 0, encodePerLatentFrameMs: 0 };
}

/** 4 steps + the clean pass: a block is 5 forwards and one decode. */
function question(replicaBlock: number | null, pipelineBlock: number | null, over: Partial<PlacementQuestion> = {}, objectives: Partial<PlacementQuestion['stream']['objectives']> = {}): PlacementQuestion {
  const coefficients: Record<string, ReturnType<typeof flat>> = {};
  if (replicaBlock !== null) coefficients['native-cuda'] = flat((replicaBlock - 20) / 5, 20);
  if (pipelineBlock !== null) coefficients['native-cuda-pipeline'] = flat((pipelineBlock - 20) / 5, 20);
  return {
    costModel: new CostModel(coefficients),
    devices: { replicas: 'native-cuda', pipeline: 'native-cuda-pipeline' },
    gpus: 2,
    streams: 2,
    // 3 latent frames x 4 video frames at 16 fps: a block every 750 ms
    stream: { tokensPerFrame: 1560, windowFrames: 21, videoFramesPerLatentFrame: 4, steps: 4, blockFrames: 3, objectives: { targetFps: 16, ttffMs: 2000, latencyMs: 2500, priority: 0, ...objectives } },
    headroom: 0.1,
    ...over,
  };
}

test('two streams on two GPUs: replicas, whose block is shorter (no hand-over between stages)', () => {
  const choice = choosePlacement(question(440, 458));
  assert.is(choice.placement, 'replicas');
  const replicas = choice.figures.find((f) => f.placement === 'replicas')!;
  assert.ok(Math.abs(replicas.blockMs - 440) < 1e-9);
  assert.is(replicas.streamsPerLane, 1);
  assert.ok(replicas.meetsObjectives);
  assert.match(choice.reason, /2 streams on 2 GPUs: both meet the objectives; replicas/);
});

test('more streams than GPUs: each lane carries its share, and the cheaper block still wins', () => {
  const choice = choosePlacement(question(440, 458, { streams: 3 }, { targetFps: 8 }));
  assert.is(choice.placement, 'replicas');
  for (const f of choice.figures) assert.is(f.streamsPerLane, 2);
  const r = choice.figures.find((f) => f.placement === 'replicas')!;
  assert.ok(Math.abs(r.utilisation - (2 * 440) / 1500) < 1e-9);
  assert.ok(Math.abs(r.roundMs - 880) < 1e-9);
});

test('one stream whose latency objective only the pipeline meets: the pipeline', () => {
  // deadline = min(TTFF, latency) = 1000 ms; a whole block cannot be preempted, so it needs 2 x block <= 900 ms
  const choice = choosePlacement(question(600, 400, { streams: 1 }, { ttffMs: 1000, latencyMs: 1000 }));
  assert.is(choice.placement, 'pipeline');
  assert.equal(
    choice.figures.map((f) => [f.placement, f.meetsObjectives]),
    [
      ['replicas', false],
      ['pipeline', true],
    ],
  );
  assert.match(choice.reason, /only pipeline meets the objectives/);
});

test('one stream that both meet: the shorter block (replicas at equal cost: no hand-over)', () => {
  assert.is(choosePlacement(question(440, 458, { streams: 1 })).placement, 'replicas');
  assert.is(choosePlacement(question(458, 440, { streams: 1 })).placement, 'pipeline');
  assert.is(choosePlacement(question(440, 440, { streams: 1 })).placement, 'replicas');
});

test('neither meets the objectives: the shorter round, said so', () => {
  const choice = choosePlacement(question(900, 800, { streams: 2 }, { ttffMs: 1000, latencyMs: 1000 }));
  assert.is(choice.placement, 'pipeline');
  assert.match(choice.reason, /neither meets the objectives/);
});

test('a setup without timings is not a candidate; none at all is an argument error', () => {
  assert.is(choosePlacement(question(null, 458)).placement, 'pipeline');
  assert.is(choosePlacement(question(440, null)).placement, 'replicas');
  assert.throws(() => choosePlacement(question(null, null)), (e: unknown) => e instanceof SchedulerError);
  assert.throws(() => choosePlacement(question(440, 458, { gpus: 0 })), (e: unknown) => e instanceof SchedulerError);
});

test.run();
