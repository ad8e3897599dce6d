import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ParticipativePolicy, topRows, type ParticipativeOptions, type TokenSelection } from '../../src/cache/participative.js';
import { DeepSinkPolicy } from '../../src/cache/policies/deep-sink.js';
import { SinkPolicy } from '../../src/cache/policies/sink.js';
import type { BlockPlan, CachePolicy, HeldFrame, PlanInput } from '../../src/cache/types.js';

const base: ParticipativeOptions = {
  window: 9,
  budget: 6,
  recent: 3,
  sink: 2,
  blockFrames: 2,
  tokensPerFrame: 4,
  layers: 2,
  score: 'sum',
  rephase: false,
  reindexed: false,
};

test('topRows: the highest scores, returned in row order; ties to the lower row; NaN lowest', () => {
  const candidates = Int32Array.from([3, 4, 5, 6, 7, 8]);
  const scores = new Float32Array(10);
  scores.set([0.5, 2, -1, 2, 9, NaN], 3);
  assert.equal([...topRows(candidates, scores, 2)], [4, 7]);
  assert.equal([...topRows(candidates, scores, 3)], [4, 6, 7]);
  assert.equal([...topRows(candidates, scores, 5)], [3, 4, 5, 6, 7]);
  assert.equal([...topRows(candidates, scores, 6)], [3, 4, 5, 6, 7, 8]);
  const flat = new Float32Array(10).fill(1);
  assert.equal([...topRows(candidates, flat, 2)], [3, 4]);
});

test('topRows agrees with a full sort on random scores with many ties', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 300);
    const candidates = Int32Array.from({ length: n }, (_, i) => 2 * i + 1);
    const scores = new Float32Array(2 * n + 1).map(() => Math.floor(rand() * (trial % 2 ? 5 : 1000)));
    const count = Math.floor(rand() * (n + 1));
    const expected = [...candidates]
      .sort((a, b) => scores[b] - scores[a] || a - b)
      .slice(0, count)
      .sort((a, b) => a - b);
    assert.equal([...topRows(candidates, scores, count)], expected, `trial ${trial}`);
  }
});

/** A base policy that records what it was asked and keeps every slot where it is. */
class Recorder implements CachePolicy {
  readonly name = 'recorder';
  inputs: PlanInput[] = [];
  planBlock(input: PlanInput): BlockPlan {
    this.inputs.push(input);
    const slots = input.held.map((h, i) => ({ terms: [{ ref: { held: i }, weight: 1 }], frame: h.frame, role: h.role, position: h.position }));
    return { slots, queryPositions: [input.blockStart, input.blockStart + 1], positionShift: 0, ownPositionFloor: 0 };
  }
}

const compressor = (options: ParticipativeOptions) => new ParticipativePolicy(new Recorder(), options);

/** Layer `layer`'s current-cache rows of the selected cache, slot after slot. */
function rowsOf(sel: TokenSelection, layer: number, T = 4): number[] {
  return sel.sources.flatMap((src) => ('held' in src ? Array.from({ length: T }, (_, t) => src.held * T + t) : [...src.tokens[layer]]));
}

function cache(): HeldFrame[] {
  // sink 0, 1 | history 2..6 (slots 2..6) ; recent before the block = R - F = 1 frame (frame 6).
  return [0, 1, 2, 3, 4, 5, 6].map((f) => ({ frame: f, role: f < 2 ? 'sink' : 'history', position: f }));
}

test('select: per layer, top C*T candidate tokens packed [sink | top-C | recent]', () => {
  const c = compressor(base);
  assert.is(c.topFrames, 1);
  const T = 4;
  const rows = 7 * T;
  const scores = new Float32Array(2 * rows);
  // layer 0 favours tokens 9, 13, 17, 21 (row order); layer 1 favours 8, 9, 10, 23; the sink and recent
  // rows get huge scores that must not matter.
  for (const r of [0, 1, 2, 3, 4, 5, 6, 7, 24, 25, 26, 27]) {
    scores[r] = 100;
    scores[rows + r] = 100;
  }
  [21, 9, 17, 13].forEach((r, i) => (scores[r] = 10 + i));
  [8, 9, 10, 23].forEach((r, i) => (scores[rows + r] = 5 - i));
  const sel = c.select({ scores, held: cache(), blockStart: 7 });
  assert.equal(rowsOf(sel, 0), [0, 1, 2, 3, 4, 5, 6, 7, 9, 13, 17, 21, 24, 25, 26, 27]);
  assert.equal(rowsOf(sel, 1), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 23, 24, 25, 26, 27]);
  assert.equal(sel.held, [
    { frame: 0, role: 'sink', position: 0 },
    { frame: 1, role: 'sink', position: 1 },
    { frame: 5, role: 'compressed', position: 5, ownPositions: true },
    { frame: 6, role: 'history', position: 6 },
  ]);
});

test('select: earlier compressed slots are candidates again; rephase places the top-C right before the recent frames', () => {
  const c = compressor({ ...base, budget: 7, rephase: true });
  assert.is(c.ownPositions, false);
  const T = 4;
  const held: HeldFrame[] = [
    { frame: 0, role: 'sink', position: 0 },
    { frame: 1, role: 'sink', position: 1 },
    { frame: 3, role: 'compressed', position: 3 },
    { frame: 4, role: 'history', position: 4 },
    { frame: 5, role: 'history', position: 5 },
    { frame: 6, role: 'history', position: 6 },
  ];
  const rows = held.length * T;
  const scores = new Float32Array(2 * rows);
  [8, 9, 12, 19, 20].forEach((r) => (scores[r] = 1)); // 20 is recent: ignored
  [10, 11, 14, 15, 16, 17, 18, 19].forEach((r) => (scores[rows + r] = 1));
  const sel = c.select({ scores, held, blockStart: 7 });
  assert.equal(rowsOf(sel, 0).slice(8, 16), [8, 9, 12, 19, 10, 11, 13, 14].sort((a, b) => a - b));
  assert.equal(rowsOf(sel, 1).slice(8, 16), [10, 11, 14, 15, 16, 17, 18, 19]);
  assert.equal(sel.held.map((h: HeldFrame) => [h.frame, h.role]), [
    [0, 'sink'],
    [1, 'sink'],
    [4, 'compressed'],
    [5, 'compressed'],
    [6, 'history'],
  ]);
});

test('select: recent equal to the block keeps no history frame; top-C lands right before the block', () => {
  const c = compressor({ ...base, budget: 4, recent: 2, sink: 1 });
  const held: HeldFrame[] = [0, 1, 2, 3].map((f) => ({ frame: f, role: f < 1 ? 'sink' : 'history', position: f }));
  const scores = new Float32Array(2 * 16).fill(0);
  const sel = c.select({ scores, held, blockStart: 10 });
  assert.equal(sel.held.map((h: HeldFrame) => [h.frame, h.role]), [
    [0, 'sink'],
    [9, 'compressed'],
  ]);
  assert.equal(rowsOf(sel, 0), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('select refuses scores of the wrong size', () => {
  const c = compressor(base);
  assert.throws(() => c.select({ scores: new Float32Array(3), held: cache(), blockStart: 7 }), /scores/);
});

test('queryWindows: the current first step, then the last R - F frames of earlier clean passes', () => {
  const make = (recent: number, blockFrames: number) => compressor({ ...base, budget: recent + 4, recent, blockFrames }).queryWindows();
  assert.equal(make(4, 3), [
    { blocksAgo: 0, frames: [0, 3] },
    { blocksAgo: 1, frames: [2, 3] },
  ]);
  assert.equal(make(3, 3), [{ blocksAgo: 0, frames: [0, 3] }]);
  assert.equal(make(8, 3), [
    { blocksAgo: 0, frames: [0, 3] },
    { blocksAgo: 1, frames: [0, 3] },
    { blocksAgo: 2, frames: [1, 3] },
  ]);
});

test('own positions unless rephased or the policy re-indexes the cache', () => {
  assert.is(compressor(base).ownPositions, true);
  assert.is(compressor({ ...base, rephase: true }).ownPositions, false);
  assert.is(compressor({ ...base, reindexed: true }).ownPositions, false);
  assert.is(compressor({ ...base, score: 'max' }).reduce, 'max');
});

test('impossible budgets are refused', () => {
  assert.throws(() => compressor({ ...base, budget: 5 }), /top-C/);
  assert.throws(() => compressor({ ...base, recent: 1 }), /recent/);
});

test('the wrapper plans with its base policy, which evicts nothing; a block overflows past the window', () => {
  const recorder = new Recorder();
  const p = new ParticipativePolicy(recorder, base);
  assert.is(p.name, 'recorder+participative');
  const plan = p.planBlock({ held: cache(), incoming: [], blockStart: 7, blockFrames: 2 });
  assert.is(recorder.inputs[0].keepAll, true);
  assert.is(plan.slots.length, 7);
  assert.is(p.overflows(plan), false, '7 held + 2 = the window of 9');
  assert.is(p.overflows({ ...plan, slots: [...plan.slots, plan.slots[0]] }), true);
  // A real base policy asked this way keeps every frame it would otherwise evict.
  const deep = new ParticipativePolicy(new DeepSinkPolicy({ window: 9, sink: 2 }), base);
  const held = cache();
  const incoming = [{ frame: 7 }, { frame: 8 }];
  assert.is(deep.planBlock({ held, incoming, blockStart: 9, blockFrames: 2 }).slots.length, 9);
  assert.is(deep.base.planBlock({ held, incoming, blockStart: 9, blockFrames: 2 }).slots.length, 7);
});

test('planCompression: the base policy places the selection; whole slots stay held refs, top-C slots take per-layer tokens', () => {
  const recorder = new Recorder();
  const p = new ParticipativePolicy(recorder, base);
  const T = 4;
  const rows = 7 * T;
  const scores = new Float32Array(2 * rows);
  [21, 9, 17, 13].forEach((r) => (scores[r] = 1));
  [8, 9, 10, 23].forEach((r) => (scores[rows + r] = 1));
  const plan = p.planCompression({ scores, held: cache(), blockStart: 7, blockFrames: 2 });
  const asked = recorder.inputs.at(-1)!;
  assert.equal([asked.keepAll, asked.incoming, asked.blockStart, asked.held.map((h) => h.role)], [true, [], 7, ['sink', 'sink', 'compressed', 'history']]);
  assert.equal(plan.slots.map((s) => s.terms[0].ref).filter((r) => 'held' in r), [{ held: 0 }, { held: 1 }, { held: 6 }]);
  const top = plan.slots[2].terms[0].ref;
  assert.ok('tokens' in top);
  assert.equal(top.tokens.map((l) => [...l]), [
    [9, 13, 17, 21],
    [8, 9, 10, 23],
  ]);
  assert.equal(plan.queryPositions, [7, 8]);
  // sink/cache re-indexes by place: the compressed slot loses its own positions and takes its place.
  const reindexing = new ParticipativePolicy(new SinkPolicy({ window: 9, sink: 2, positions: 'cache' }), { ...base, reindexed: true });
  const placed = reindexing.planCompression({ scores, held: cache(), blockStart: 7, blockFrames: 2 });
  assert.equal(placed.slots.map((s) => [s.role, s.position, s.ownPositions === true]), [
    ['sink', 0, false],
    ['sink', 1, false],
    ['compressed', 2, false],
    ['history', 3, false],
  ]);
  assert.equal(placed.queryPositions, [4, 5]);
});

test('planCompression refuses a base policy that blends the selected cache', () => {
  const blending: CachePolicy = {
    name: 'blend',
    planBlock: (input) => ({
      slots: [{ terms: [{ ref: { held: 0 }, weight: 0.5 }, { ref: { held: 1 }, weight: 0.5 }], frame: 0, role: 'sink', position: 0 }],
      queryPositions: [input.blockStart],
      positionShift: 0,
      ownPositionFloor: 0,
    }),
  };
  const p = new ParticipativePolicy(blending, base);
  assert.throws(() => p.planCompression({ scores: new Float32Array(2 * 28), held: cache(), blockStart: 7, blockFrames: 2 }), /blend: a compressed cache may only be kept/);
});

test.run();
