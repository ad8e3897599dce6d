/**
 * Sparse attention over the cache (src/cache/sparse.ts), through the ledger into a stand-in engine
 * cache: which tokens the packed slots hold, at which positions, how many keys a query sees, and
 * how it follows each base policy (positions equal to the dense cache's for the same tokens).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { cacheConfigProblems } from '../../src/config/checks/cache.js';
import { createStreamCache, retuneStreamCache } from '../../src/cache/create-policy.js';
import { CacheLedger } from '../../src/cache/ledger.js';
import { SparsePolicy, memberOf, packPattern } from '../../src/cache/sparse.js';
import { StreamCache } from '../../src/cache/stream-cache.js';
import { WindowPolicy } from '../../src/cache/policies/window.js';
import { SinkPolicy } from '../../src/cache/policies/sink.js';
import { DeepSinkPolicy } from '../../src/cache/policies/deep-sink.js';
import type { CachePolicy } from '../../src/cache/types.js';
import { modelDims } from '../../src/model/dims.js';
import { FakeCache } from './helpers/fake-engine.js';
import { calibrationKey } from '../../src/realtime/engine-calibration.js';
import { describeCache } from '../../src/cli/describe.js';

const LAYERS = 2;
const GRID_H = 2;
const GRID_W = 3;
const T = GRID_H * GRID_W;
const F = 3;

interface Token {
  frame: number;
  t: number;
  /** Temporal, row, column position as the engine holds it. */
  position: [number, number, number];
}

/** A policy driven through a ledger and a fake engine cache; returns what the cache holds per block. */
function drive(policy: CachePolicy, blocks: number, visit: (b: number, tokens: Token[][], queryPositions: number[], cache: StreamCache) => void): void {
  const ledger = new CacheLedger({ layers: LAYERS, tokensPerFrame: T, gridHeight: GRID_H, gridWidth: GRID_W });
  const cache = new StreamCache(policy, ledger);
  const fake = new FakeCache(LAYERS, T);
  for (let b = 0; b < blocks; b++) {
    const begun = cache.beginBlock(b * F, F);
    fake.update(begun.update);
    visit(b, decode(fake), begun.plan.queryPositions, cache);
    fake.keepBlock(b * F, F);
    cache.endBlock(b * F, F);
  }
}

/** Per layer, every row's token (frame and grid index from the fake value) and its positions. */
function decode(fake: FakeCache): Token[][] {
  return fake.values.map((values, l) =>
    Array.from(values, (v, r) => {
      const frame = Math.floor(v / 1000);
      const t = Math.round(v - frame * 1000 - l / 8);
      const p = fake.positions[l];
      return { frame, t, position: [p[r * 3], p[r * 3 + 1], p[r * 3 + 2]] as [number, number, number] };
    }),
  );
}

const sparse = (base: CachePolicy, stride = 3, denseFrames = 3) => new SparsePolicy(base, { stride, denseFrames, tokensPerFrame: T, gridWidth: GRID_W, layers: LAYERS });

test('pattern: stride consecutive frames keep every grid location exactly once, in diagonal stripes', () => {
  for (const stride of [2, 3, 4]) {
    for (const first of [0, 5, 7]) {
      const pattern = packPattern(T, GRID_W, first, stride);
      for (let t = 0; t < T; t++) {
        const [r, c] = [Math.floor(t / GRID_W), t % GRID_W];
        // frame first + j keeps the locations whose diagonal is congruent to its own index
        assert.is((r + c - (first + pattern[t])) % stride, 0);
      }
    }
  }
  // each frame of a group of 3 keeps two of the six locations of a 2x3 grid
  assert.equal([...packPattern(T, GRID_W, 3, 3)], [0, 1, 2, 1, 2, 0]);
  assert.is(memberOf(4, GRID_W, 4, 3), 1);
});

test('sink absolute, W 12 S 3, stride 3, dense 3: which tokens the packed slots hold and where, block by block', () => {
  const seen: string[][] = [];
  drive(sparse(new SinkPolicy({ window: 12, sink: 3 })), 6, (b, tokens, queryPositions) => {
    const layer0 = tokens[0];
    // rows come in whole slots of T; a slot is described by the frames its tokens come from
    const slots = Array.from({ length: layer0.length / T }, (_, s) => layer0.slice(s * T, (s + 1) * T));
    seen.push(slots.map((slot) => [...new Set(slot.map((k) => k.frame))].join('+')));
    assert.equal(queryPositions, [b * F, b * F + 1, b * F + 2]);
    for (const [l, rows] of tokens.entries()) {
      rows.forEach((k, r) => {
        // every token sits at its own frame, row and column (absolute positions, no table shift here)
        assert.equal(k.position, [k.frame, Math.floor(k.t / GRID_W), k.t % GRID_W], `block ${b} layer ${l} row ${r}`);
      });
      assert.equal(rows, tokens[0].map((k) => ({ ...k })), 'every layer holds the same tokens');
    }
    for (const slot of slots) {
      const frames = [...new Set(slot.map((k) => k.frame))];
      if (frames.length === 1) assert.equal(slot.map((k) => k.t), [0, 1, 2, 3, 4, 5], 'a dense frame holds all its tokens in grid order');
      else slot.forEach((k, t) => assert.equal([k.t, k.frame], [t, frames[0] + packPattern(T, GRID_W, frames[0], 3)[t]], 'packed row t: location t of the member that keeps it'));
    }
  });
  assert.equal(seen, [
    [],
    ['0', '1', '2'],
    ['0', '1', '2', '3', '4', '5'],
    ['0', '1', '2', '3+4+5', '6', '7', '8'],
    ['0', '1', '2', '6+7+8', '9', '10', '11'], // the window evicts 3..5: their packed slot leaves
    ['0', '1', '2', '9+10+11', '12', '13', '14'],
  ]);
});

test('keys per query at window 21, sink 3, block 3 (the 1.3B shape): 21 frames dense, 13 with stride 3, 15 with 6 dense frames', () => {
  const keysPerQuery = (sparseKeys: ConfigInput['cache']) => {
    const config = configSchema.parse({ model: { arch: { layers: 2 }, latentHeight: 60, latentWidth: 104 }, cache: { policy: 'sink', window: 21, sink: 3, ...sparseKeys } });
    const dims = modelDims(config);
    const cache = createStreamCache(config);
    const keys: number[] = [];
    for (let b = 0; b < 12; b++) {
      const { update } = cache.beginBlock(b * F, F);
      assert.is(update.perLayer, false, 'the pattern is the same in every layer: one gather table');
      keys.push(update.rows / dims.tokensPerFrame + F);
      cache.endBlock(b * F, F);
    }
    assert.is(dims.tokensPerFrame, 1560);
    return keys;
  };
  assert.equal(keysPerQuery({}), [3, 6, 9, 12, 15, 18, 21, 21, 21, 21, 21, 21]);
  assert.equal(keysPerQuery({ sparse: { stride: 3 } }), [3, 6, 9, 10, 11, 12, 13, 13, 13, 13, 13, 13]);
  assert.equal(keysPerQuery({ sparse: { stride: 3, denseFrames: 6 } }), [3, 6, 9, 12, 13, 14, 15, 15, 15, 15, 15, 15]);
});

/**
 * The packed tokens follow what the base policy does to their frames: every token of the sparse
 * cache has the positions the same token has in the dense cache at the same block, and the queries
 * sit where they sit dense; a small RoPE table makes the positions shift, re-index and re-align.
 */
const bases: Array<[string, () => CachePolicy, number[]]> = [
  ['window', () => new WindowPolicy({ window: 12, ropeMaxPosition: 20 }), [2, 3]],
  ['sink absolute', () => new SinkPolicy({ window: 12, sink: 3, ropeMaxPosition: 20 }), [2, 3]],
  ['sink cache', () => new SinkPolicy({ window: 12, sink: 3, positions: 'cache', ropeMaxPosition: 20 }), [3]],
  ['deep-sink', () => new DeepSinkPolicy({ window: 15, sink: 3, ropeMaxPosition: 20 }), [3]],
];
for (const [name, makeBase, strides] of bases) {
  for (const stride of strides) {
    test(`${name}, stride ${stride}: packed tokens at the positions their frames have in the dense cache, over 30 blocks`, () => {
      const dense: Array<{ tokens: Map<string, Token>; queries: number[] }> = [];
      drive(makeBase(), 30, (_, tokens, queryPositions) => dense.push({ tokens: new Map(tokens[0].map((k) => [`${k.frame}:${k.t}`, k])), queries: queryPositions }));
      let packedSeen = 0;
      drive(sparse(makeBase(), stride), 30, (b, tokens, queryPositions, cache) => {
        assert.equal(queryPositions, dense[b].queries, `block ${b} queries`);
        for (const k of tokens[0]) {
          const same = dense[b].tokens.get(`${k.frame}:${k.t}`);
          assert.ok(same, `block ${b}: frame ${k.frame} token ${k.t} is not in the dense cache`);
          assert.equal(k.position, same!.position, `block ${b}: frame ${k.frame} token ${k.t}`);
        }
        assert.ok(tokens[0].length <= dense[b].tokens.size);
        packedSeen += cache.held.filter((h) => h.role === 'sparse').length;
      });
      assert.ok(packedSeen > 20, `packed slots were made (${packedSeen})`);
    });
  }
}

test('a stride that does not divide the block: far frames wait dense until a group is complete', () => {
  const seen: string[][] = [];
  drive(sparse(new WindowPolicy({ window: 15 }), 4, 3), 7, (_, tokens) => {
    const frames = Array.from({ length: tokens[0].length / T }, (_, s) => [...new Set(tokens[0].slice(s * T, (s + 1) * T).map((k) => k.frame))].join('+'));
    seen.push(frames);
  });
  assert.equal(seen.slice(3), [
    ['0+1+2+3', '4', '5', '6', '7', '8'], // far 0..5: one group of 4; 4 and 5 wait dense
    ['0+1+2+3', '4+5+6+7', '8', '9', '10', '11'], // 8 waits
    ['4+5+6+7', '8+9+10+11', '12', '13', '14'], // the window keeps 3..14: 0+1+2+3 leaves with frame 0
    ['8+9+10+11', '12', '13', '14', '15', '16', '17'], // it keeps 6..17: 4+5+6+7 leaves; 12..14 wait for a fourth
  ]);
});

test('stride 1 over a cache without packed slots plans exactly what the base policy plans', () => {
  for (const [name, makeBase] of bases) {
    const plain: unknown[] = [];
    drive(makeBase(), 25, (_, tokens, q) => plain.push([tokens, q]));
    const wrapped: unknown[] = [];
    drive(sparse(makeBase(), 1), 25, (_, tokens, q) => wrapped.push([tokens, q]));
    assert.equal(wrapped, plain, name);
  }
});

test('a retune that turns sparse off drops the packed slots; turning it on again packs the far frames again', () => {
  const config = (stride: number) => configSchema.parse({ model: { arch: { layers: LAYERS }, latentHeight: 4, latentWidth: 6 }, cache: { policy: 'sink', window: 15, sink: 3, sparse: { stride } } });
  let cache = createStreamCache(config(3));
  const roles: string[] = [];
  for (let b = 0; b < 8; b++) {
    if (b === 4) cache = retuneStreamCache(cache, config(1));
    if (b === 6) cache = retuneStreamCache(cache, config(3));
    cache.beginBlock(b * F, F);
    roles.push(cache.held.map((h) => (h.role === 'sparse' ? `[${h.packed!.join('+')}]` : String(h.frame))).join(' '));
    cache.endBlock(b * F, F);
  }
  assert.equal(roles.slice(3), [
    '0 1 2 [3+4+5] 6 7 8',
    '0 1 2 6 7 8 9 10 11', // off: [3+4+5] is dropped (the dense window would still hold 3..5)
    '0 1 2 6 7 8 9 10 11 12 13 14',
    '0 1 2 [9+10+11] [12+13+14] 15 16 17', // on again: the far whole frames are packed, 6..8 leave with the window
    '0 1 2 [12+13+14] [15+16+17] 18 19 20',
  ]);
});

test('retunes between sparse and participative compression carry the cache over, in both directions', () => {
  const config = (cache: ConfigInput['cache']) => configSchema.parse({ model: { arch: { layers: LAYERS }, latentHeight: 4, latentWidth: 6 }, cache: { policy: 'deep-sink', window: 15, sink: 3, ...cache } });
  const sparseOn = config({ sparse: { stride: 3 } });
  const compressing = config({ compression: 'participative', participative: { budget: 10, recent: 4 } });
  let cache = createStreamCache(sparseOn);
  const fake = new FakeCache(LAYERS, T);
  const held: string[] = [];
  for (let b = 0; b < 14; b++) {
    if (b === 5) cache = retuneStreamCache(cache, compressing);
    if (b === 9) cache = retuneStreamCache(cache, sparseOn);
    const begun = cache.beginBlock(b * F, F);
    fake.update(begun.update);
    if (begun.compress) fake.update(cache.compress(fake.scores(), b * F, F).update);
    held.push(cache.held.map((h) => ({ sink: 's', history: 'h', compressed: 'c', sparse: 'p' })[h.role]).join(''));
    fake.keepBlock(b * F, F);
    cache.endBlock(b * F, F);
  }
  assert.ok(held[4].includes('p'), `sparse slots before the retune: ${held[4]}`);
  assert.ok(!held[5].includes('p') && held.slice(5, 9).some((h) => h.includes('c')), `compression after it: ${held.slice(5, 9)}`);
  assert.ok(held[13].includes('p'), `sparse again: ${held[13]}`);
});

test('config: sparse keys validated, refused with ema-sink and participative, a window too small to thin is named', () => {
  const problems = (cache: ConfigInput['cache']) => cacheConfigProblems(configSchema.parse({ cache })).map((p) => p.path);
  assert.equal(problems({ sparse: { stride: 3 } }), []);
  assert.equal(problems({ policy: 'ema-sink', window: 12, sparse: { stride: 3 } }), ['cache.sparse.stride']);
  assert.equal(problems({ compression: 'participative', window: 21, sparse: { stride: 3 } }), ['cache.sparse.stride']);
  assert.equal(problems({ compression: 'participative', window: 21, sparse: { stride: 1 } }), []);
  assert.equal(problems({ sparse: { stride: 3, denseFrames: 2 } }), ['cache.sparse.denseFrames']);
  assert.equal(problems({ window: 12, sparse: { stride: 4 } }), ['cache.sparse.stride']); // 12 - 3 - 3 - 3 = 3 far frames
  assert.equal(problems({ policy: 'window', window: 12, sparse: { stride: 4 } }), []);
  assert.throws(() => configSchema.parse({ cache: { sparse: { stride: 0 } } }));
  assert.throws(() => configSchema.parse({ cache: { sparse: { strides: 2 } } }));
});

test('sparse on is part of the calibration key and the cache description; off leaves both as they were', () => {
  const off = configSchema.parse({});
  const on = configSchema.parse({ cache: { sparse: { stride: 3 } } });
  assert.not.match(calibrationKey(off), /sparse/);
  assert.is.not(calibrationKey(on), calibrationKey(off));
  assert.is(describeCache(off.cache), 'sink W=12 S=3 positions=absolute');
  assert.is(describeCache(on.cache), 'sink W=12 S=3 positions=absolute + sparse(stride=3, dense=3)');
});

test.run();
