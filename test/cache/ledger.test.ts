import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CacheLedger } from '../../src/cache/ledger.js';
import { StreamCache } from '../../src/cache/stream-cache.js';
import { ParticipativePolicy } from '../../src/cache/participative.js';
import { SinkPolicy } from '../../src/cache/policies/sink.js';
import { DeepSinkPolicy } from '../../src/cache/policies/deep-sink.js';
import { EmaSinkPolicy } from '../../src/cache/policies/ema-sink.js';
import { WindowPolicy } from '../../src/cache/policies/window.js';
import type { BlockPlan, CachePolicy, PlannedSlot } from '../../src/cache/types.js';
import { FakeCache, scoreOf, tokenValue } from './helpers/fake-engine.js';

const dims = { layers: 2, tokensPerFrame: 4, gridHeight: 2, gridWidth: 2 };
const grid = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];

function plan(slots: PlannedSlot[], extra: Partial<BlockPlan> = {}): BlockPlan {
  return { slots, queryPositions: [], positionShift: 0, ownPositionFloor: 0, ...extra };
}

test('lowering a plan: indices into [current rows | pending rows], blend weights, (frame, row, column) positions', () => {
  const ledger = new CacheLedger(dims);
  ledger.addPending(0, 2);
  const first = ledger.applyPlan(
    plan([
      { terms: [{ ref: { incoming: 0 }, weight: 1 }], frame: 0, role: 'sink', position: 0 },
      { terms: [{ ref: { incoming: 1 }, weight: 1 }], frame: 1, role: 'history', position: 1 },
    ]),
  );
  assert.equal([first.rows, first.terms, first.perLayer], [8, 1, false]);
  assert.equal([...first.sources], [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal([...first.weights], [1, 1, 1, 1, 1, 1, 1, 1]);
  assert.equal([...first.positions], [0, 1].flatMap((f) => grid.flatMap(([r, c]) => [f, r, c])));
  assert.equal(ledger.pending, []);

  ledger.addPending(2, 2);
  const second = ledger.applyPlan(
    plan([
      { terms: [{ ref: { held: 0 }, weight: 0.25 }, { ref: { incoming: 0 }, weight: 0.75 }], frame: 0, role: 'sink', position: 0 },
      { terms: [{ ref: { held: 1 }, weight: 1 }], frame: 1, role: 'history', position: 1 },
      { terms: [{ ref: { incoming: 1 }, weight: 1 }], frame: 3, role: 'history', position: 2 },
    ]),
  );
  assert.equal([second.rows, second.terms, second.perLayer], [12, 2, false]);
  // current rows 0..7, pending rows 8..15
  assert.equal([...second.sources], [0, 8, 1, 9, 2, 10, 3, 11, 4, 0, 5, 0, 6, 0, 7, 0, 12, 0, 13, 0, 14, 0, 15, 0]);
  assert.equal([...second.weights], [0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
  assert.equal([...second.positions], [0, 1, 2].flatMap((p) => grid.flatMap(([r, c]) => [p, r, c])));
  assert.equal(ledger.held, [
    { frame: 0, role: 'sink', position: 0 },
    { frame: 1, role: 'history', position: 1 },
    { frame: 3, role: 'history', position: 2 },
  ]);
  assert.is(ledger.rows, 12);
});

test('plans that refer to missing frames, or blend own-position slots, are refused', () => {
  const ledger = new CacheLedger(dims);
  assert.throws(() => ledger.applyPlan(plan([{ terms: [{ ref: { held: 0 }, weight: 1 }], frame: 0, role: 'sink', position: 0 }])), /held slot 0/);
  ledger.addPending(0, 1);
  assert.throws(
    () => ledger.applyPlan(plan([{ terms: [{ ref: { incoming: 0 }, weight: 1 }], frame: 0, role: 'compressed', position: 0, ownPositions: true }])),
    /own positions/,
  );
  // Token refs: one row list per layer, T rows each, inside the current cache.
  const tokens = (rows: number[][]) => plan([{ terms: [{ ref: { tokens: rows.map((r) => Int32Array.from(r)) }, weight: 1 }], frame: 0, role: 'compressed', position: 0 }]);
  assert.throws(() => ledger.applyPlan(tokens([[0, 1, 2, 3]])), /1 layers, expected 2/);
  assert.throws(() => ledger.applyPlan(tokens([[0, 1, 2], [0, 1, 2, 3]])), /3 rows in a layer, expected 4/);
  assert.throws(() => ledger.applyPlan(tokens([[0, 1, 2, 3], [0, 1, 2, 3]])), /token row 0 outside the cache \(0 rows\)/);
});

/** Runs a policy (participative ones compress when asked) over a stream against the fake engine cache; returns the checks' material. */
function stream(
  cache: StreamCache,
  blocks: number,
  F: number,
  visit: (info: { index: number; f0: number; plan: BlockPlan; engine: FakeCache; compressed: boolean; peakRows: number; trigger: Float64Array[] }) => void,
): void {
  const engine = new FakeCache(dims.layers, dims.tokensPerFrame);
  for (let b = 0; b < blocks; b++) {
    const f0 = b * F;
    const begun = cache.beginBlock(f0, F);
    let { plan, update } = begun;
    engine.update(update);
    const peakRows = engine.rows;
    const trigger = engine.values.map((v) => v.slice());
    let compressed = false;
    if (begun.compress) {
      ({ plan, update } = cache.compress(engine.scores(), f0, F));
      engine.update(update);
      compressed = true;
    }
    visit({ index: b, f0, plan, engine, compressed, peakRows, trigger });
    engine.keepBlock(f0, F);
    cache.endBlock(f0, F);
  }
}

function frameOf(value: number): number {
  return Math.floor(value / 1000);
}

test('sink policy end to end: the engine holds exactly the planned frames at the planned positions', () => {
  const F = 2;
  const W = 8;
  const cache = new StreamCache(new SinkPolicy({ window: W, sink: 2 }), new CacheLedger(dims));
  stream(cache, 30, F, ({ index, plan, engine }) => {
    assert.is(engine.rows, plan.slots.length * 4);
    assert.ok(plan.slots.length + F <= W);
    if (index > 4) assert.is(engine.rows, (W - F) * 4);
    for (let l = 0; l < dims.layers; l++) {
      plan.slots.forEach((s, i) => {
        for (let t = 0; t < 4; t++) {
          assert.is(engine.values[l][i * 4 + t], tokenValue(s.frame, t, l), `block ${index} layer ${l} slot ${i}`);
          assert.equal([...engine.positions[l].subarray((i * 4 + t) * 3, (i * 4 + t) * 3 + 3)], [s.position, ...grid[t]]);
        }
      });
    }
  });
});

test('ema-sink end to end: the engine rows are the exact EMA blends (alpha 0.5), un-rotated, at the slot places', () => {
  const F = 3;
  const alpha = 0.5;
  const cache = new StreamCache(new EmaSinkPolicy({ window: 9, sink: 3, alpha }), new CacheLedger(dims));
  stream(cache, 8, F, ({ index, plan, engine }) => {
    if (index < 3) return;
    // After block b >= 3, slot i holds frames i, i+3, ..., up to the last fused frame (3(b-1) - 1).
    const fusedUpTo = 3 * (index - 1);
    for (let i = 0; i < 3; i++) {
      const chain: number[] = [];
      for (let f = i; f < fusedUpTo; f += 3) chain.push(f);
      for (let l = 0; l < dims.layers; l++) {
        for (let t = 0; t < 4; t++) {
          let v = tokenValue(chain[0], t, l);
          for (const f of chain.slice(1)) v = alpha * v + (1 - alpha) * tokenValue(f, t, l);
          assert.ok(Math.abs(engine.values[l][i * 4 + t] - v) < 1e-9, `block ${index} slot ${i}`);
          assert.equal([...engine.positions[l].subarray((i * 4 + t) * 3, (i * 4 + t) * 3 + 3)], [i, ...grid[t]]);
        }
      }
    }
    assert.is(engine.rows, 6 * 4);
    assert.equal(plan.queryPositions, [6, 7, 8]);
  });
});

function compressing(
  policy: CachePolicy & { window: number },
  options: { budget: number; recent: number; sink: number; rephase?: boolean; reindexed?: boolean },
  F: number,
) {
  return new StreamCache(
    new ParticipativePolicy(policy, {
      ...options,
      window: policy.window,
      blockFrames: F,
      tokensPerFrame: 4,
      layers: dims.layers,
      score: 'sum',
      rephase: options.rephase ?? false,
      reindexed: options.reindexed ?? false,
    }),
    new CacheLedger(dims),
  );
}

test('deep-sink + participative end to end: per-layer top-C by score, own positions, sink re-aligned, bounded rows', () => {
  const F = 2;
  const W = 9;
  const S = 2;
  const N = 6;
  const R = 3;
  const C = N - R - S;
  const cache = compressing(new DeepSinkPolicy({ window: W, sink: S }), { budget: N, recent: R, sink: S }, F);
  let compressions = 0;
  stream(cache, 60, F, ({ index, f0, plan, engine, compressed, peakRows, trigger }) => {
    assert.ok(peakRows <= W * 4, `block ${index}: ${peakRows} rows at the trigger step`);
    assert.ok(plan.slots.length + F <= W);
    if (compressed) {
      compressions++;
      assert.is(engine.rows, (N - F) * 4);
      assert.equal(plan.slots.map((s) => s.role), ['sink', 'sink', ...Array(C).fill('compressed'), ...Array(R - F).fill('history')]);
    }
    // Sink and the last R - F frames are whole; the compressed rows are, per layer, the C*T
    // best-scoring tokens among the candidates of the trigger step.
    for (let l = 0; l < dims.layers; l++) {
      for (let i = 0; i < plan.slots.length; i++) {
        const s = plan.slots[i];
        for (let t = 0; t < 4; t++) {
          const row = i * 4 + t;
          const v = engine.values[l][row];
          const [fp, rp, cp] = engine.positions[l].subarray(row * 3, row * 3 + 3);
          if (s.role === 'compressed') {
            // own position: the token's frame and grid place
            const tok = Math.round((v - l / 8) % 1000);
            assert.equal([fp, rp, cp], [frameOf(v), ...grid[tok]]);
          } else {
            assert.is(v, tokenValue(s.frame, t, l));
            assert.equal([rp, cp], grid[t]);
          }
        }
      }
      if (compressed) {
        const candidates = [...trigger[l].slice(S * 4, trigger[l].length - (R - F) * 4)];
        const best = [...candidates].sort((a, b) => Math.fround(scoreOf(b, l)) - Math.fround(scoreOf(a, l))).slice(0, C * 4);
        const kept = [...engine.values[l].subarray(S * 4, (S + C) * 4)];
        assert.equal([...kept].sort(), [...best].sort(), `block ${index} layer ${l}`);
        // kept in time (row) order
        const order = kept.map((v) => candidates.indexOf(v));
        assert.equal(order, [...order].sort((a, b) => a - b));
      }
    }
    // Deep sink: sink i at f0 - N' + i with N' the slots kept before the block.
    const n = plan.slots.length;
    plan.slots.forEach((s, i) => {
      if (s.role === 'sink') assert.is(s.position, f0 - n + i);
      if (s.role === 'history') assert.is(s.position, s.frame);
    });
    assert.equal(plan.queryPositions, [f0, f0 + 1]);
    if (compressed) assert.ok(cache.ledger.perLayer);
  });
  assert.ok(compressions > 10, `${compressions} compressions`);
});

test('the compression plan lowers to a per-layer gather of the current rows', () => {
  const F = 2;
  const cache = compressing(new WindowPolicy({ window: 6 }), { budget: 5, recent: 3, sink: 0 }, F);
  const engine = new FakeCache(dims.layers, 4);
  for (let b = 0; b < 3; b++) {
    const { update } = cache.beginBlock(b * F, F);
    engine.update(update);
    engine.keepBlock(b * F, F);
    cache.endBlock(b * F, F);
  }
  const begun = cache.beginBlock(6, F);
  engine.update(begun.update);
  assert.is(begun.compress, true); // 6 held + 2 > 6
  // Scores: layer 0 prefers frame 1's tokens, layer 1 frame 3's.
  const rows = 6 * 4;
  const scores = new Float32Array(2 * rows);
  for (let t = 0; t < 4; t++) {
    scores[1 * 4 + t] = 1;
    scores[rows + 3 * 4 + t] = 1;
  }
  const { update, plan: after } = cache.compress(scores, 6, F);
  assert.equal([update.rows, update.terms, update.perLayer], [12, 1, true]);
  // [top-C (2 frames' worth) | recent (frame 5)]; layer 0: frame 1 then the best ties (frame 0); layer 1: frames 0, 3.
  assert.equal([...update.sources.subarray(0, 12)], [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23]);
  assert.equal([...update.sources.subarray(12, 24)], [0, 1, 2, 3, 12, 13, 14, 15, 20, 21, 22, 23]);
  assert.ok(update.weights.every((w) => w === 1));
  // Own positions: each token keeps (its frame, row, column).
  const pos = (layer: number, row: number) => [...update.positions.subarray((layer * 12 + row) * 3, (layer * 12 + row) * 3 + 3)];
  assert.equal(pos(0, 5), [1, 0, 1]);
  assert.equal(pos(1, 7), [3, 1, 1]);
  assert.equal(pos(1, 8), [5, 0, 0]);
  assert.equal(after.slots.map((s) => [s.role, s.ownPositions === true]), [
    ['compressed', true],
    ['compressed', true],
    ['history', false],
  ]);
});

test('long stream with compression and a small RoPE table: every position inside the table, own positions held at the floor', () => {
  const F = 2;
  const W = 9;
  const table = 40;
  for (const [policy, reindexed, rephase] of [
    [new DeepSinkPolicy({ window: W, sink: 2, ropeMaxPosition: table }), false, false],
    [new SinkPolicy({ window: W, sink: 2, ropeMaxPosition: table }), false, false],
    [new SinkPolicy({ window: W, sink: 2, positions: 'cache', ropeMaxPosition: table }), true, false],
    [new WindowPolicy({ window: W, ropeMaxPosition: table }), false, true],
  ] as const) {
    const sink = policy instanceof WindowPolicy ? 0 : 2;
    const cache = compressing(policy, { budget: sink + 5, recent: 3, sink, reindexed, rephase }, F);
    let maxRows = 0;
    stream(cache, 1500, F, ({ index, f0, plan, engine, peakRows }) => {
      maxRows = Math.max(maxRows, peakRows);
      for (let l = 0; l < dims.layers; l++) {
        const p = engine.positions[l];
        for (let r = 0; r < engine.rows; r++) {
          assert.ok(p[r * 3] >= 0 && p[r * 3] < table, `${policy.name} block ${index}: position ${p[r * 3]}`);
        }
      }
      assert.ok(plan.queryPositions.every((q) => q >= 0 && q < table));
      // The window's own frames keep exact distances to the block.
      plan.slots.forEach((s) => {
        if (s.role === 'history' && !reindexed) assert.is(plan.queryPositions[0] - s.position, f0 - s.frame);
      });
      // Tokens kept at their own positions too, unless held at the floor.
      if (!reindexed && !rephase) {
        plan.slots.forEach((s, i) => {
          if (s.role !== 'compressed') return;
          for (let l = 0; l < dims.layers; l++) {
            for (let t = 0; t < 4; t++) {
              const row = i * 4 + t;
              const p = engine.positions[l][row * 3];
              if (p !== plan.ownPositionFloor) assert.is(plan.queryPositions[0] - p, f0 - frameOf(engine.values[l][row]), `${policy.name} block ${index}`);
            }
          }
        });
      }
    });
    assert.ok(maxRows <= W * 4, `${policy.name}: ${maxRows} rows`);
  }
});

test('reset empties the mirror', () => {
  const ledger = new CacheLedger(dims);
  ledger.addPending(0, 2);
  ledger.applyPlan(plan([{ terms: [{ ref: { incoming: 0 }, weight: 1 }], frame: 0, role: 'sink', position: 0 }]));
  ledger.reset();
  assert.equal([ledger.rows, ledger.pending.length, ledger.positions(0).length], [0, 0, 0]);
});

test.run();
