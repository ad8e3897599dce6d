import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planPromptRecache } from '../../src/cache/prompt-recache.js';
import { CacheLedger } from '../../src/cache/ledger.js';
import { StreamCache } from '../../src/cache/stream-cache.js';
import { SinkPolicy } from '../../src/cache/policies/sink.js';
import type { BlockPlan, HeldFrame } from '../../src/cache/types.js';
import { FakeCache, tokenValue } from './helpers/fake-engine.js';

const blockPlan: BlockPlan = { slots: [], queryPositions: [12, 13, 14], positionShift: 0, ownPositionFloor: 0 };
const sink = (frame: number, position = frame): HeldFrame => ({ frame, role: 'sink', position });
const history = (frame: number, position = frame): HeldFrame => ({ frame, role: 'history', position });
const all = () => true;

test('the sink stays where it is; the history frames are re-run at their positions and restored after the sink', () => {
  const held = [sink(0, 3), sink(1, 4), history(6), history(7), history(8)];
  const recache = planPromptRecache(held, blockPlan, all)!;
  assert.equal(
    recache.keepSink.slots.map((s) => [s.terms, s.frame, s.role, s.position]),
    [
      [[{ ref: { held: 0 }, weight: 1 }], 0, 'sink', 3],
      [[{ ref: { held: 1 }, weight: 1 }], 1, 'sink', 4],
    ],
  );
  assert.equal(recache.rerun, { frames: [6, 7, 8], positions: [6, 7, 8] });
  assert.equal(
    recache.restore.slots.map((s) => [s.terms, s.frame, s.role, s.position]),
    [
      [[{ ref: { held: 0 }, weight: 1 }], 0, 'sink', 3],
      [[{ ref: { held: 1 }, weight: 1 }], 1, 'sink', 4],
      [[{ ref: { incoming: 0 }, weight: 1 }], 6, 'history', 6],
      [[{ ref: { incoming: 1 }, weight: 1 }], 7, 'history', 7],
      [[{ ref: { incoming: 2 }, weight: 1 }], 8, 'history', 8],
    ],
  );
  // Both plans keep the block's query positions and table shift.
  for (const p of [recache.keepSink, recache.restore]) {
    assert.equal([p.queryPositions, p.positionShift, p.ownPositionFloor], [[12, 13, 14], 0, 0]);
  }
});

test('compressed tokens and history frames without a latent are dropped', () => {
  const held: HeldFrame[] = [sink(0), { frame: 4, role: 'compressed', position: 2, ownPositions: true }, history(5), history(6), history(7)];
  const recache = planPromptRecache(held, blockPlan, (f) => f !== 5)!;
  assert.equal(recache.rerun.frames, [6, 7]);
  assert.equal(recache.restore.slots.map((s) => [s.frame, s.role]), [[0, 'sink'], [6, 'history'], [7, 'history']]);
});

test('nothing to rebuild, or not one consecutive run: no plan (the cache stays as it is)', () => {
  assert.is(planPromptRecache([sink(0), sink(1)], blockPlan, all), null);
  assert.is(planPromptRecache([sink(0), history(5)], blockPlan, () => false), null);
  assert.is(planPromptRecache([sink(0), history(5), history(7)], blockPlan, all), null);
});

test('executed through a stream cache: the engine holds the sink rows untouched and the re-run rows at the old positions', () => {
  const dims = { layers: 2, tokensPerFrame: 4, gridHeight: 2, gridWidth: 2 };
  const cache = new StreamCache(new SinkPolicy({ window: 6, sink: 1 }), new CacheLedger(dims));
  const engine = new FakeCache(dims.layers, dims.tokensPerFrame);
  const F = 1;
  let plan!: BlockPlan;
  for (let b = 0; b < 7; b++) {
    const begun = cache.beginBlock(b, F);
    engine.update(begun.update);
    plan = begun.plan;
    if (b < 6) {
      engine.keepBlock(b, F);
      cache.endBlock(b, F);
    }
  }
  assert.equal(cache.held.map((h) => h.frame), [0, 2, 3, 4, 5]);
  const recache = cache.planPromptRecache(plan, all)!;
  engine.update(cache.apply(recache.keepSink));
  assert.is(engine.rows, 4);
  // The re-run's clean pass: frames 2..5 again (the fake engine gives a frame the same rows).
  engine.keepBlock(recache.rerun.frames[0], recache.rerun.frames.length);
  cache.endRerun(recache);
  engine.update(cache.apply(recache.restore));
  assert.equal(cache.held.map((h) => [h.frame, h.role, h.position]), [[0, 'sink', 0], [2, 'history', 2], [3, 'history', 3], [4, 'history', 4], [5, 'history', 5]]);
  for (let l = 0; l < dims.layers; l++) {
    assert.equal([...engine.values[l]], [0, 2, 3, 4, 5].flatMap((f) => [0, 1, 2, 3].map((t) => tokenValue(f, t, l))));
    assert.equal([0, 1, 2, 3, 4].map((s) => engine.positions[l][s * 4 * 3]), [0, 2, 3, 4, 5]);
  }
  assert.equal(cache.ledger.pending, []);
});

test.run();
