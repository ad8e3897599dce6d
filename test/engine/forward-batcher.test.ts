/**
 * The forward batcher (engine.maxBatch) on recording engines and a hand-turned event loop: which forwards go out
 * together and when, each stream's result routed back to it, a member's calls kept in its order.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ForwardBatcher } from '../../src/engine/forward-batcher.js';
import type { BatchedForward, CacheUpdate, Engine, ForwardRequest, ForwardResult } from '../../src/engine/types.js';

/** What the recording engines saw, in order: 'batch a,b', 'forward a', 'update a'. */
type Log = string[];

function recordingEngine(name: string, log: Log, batchKey: string | undefined, gate?: { update: Promise<void> }): Engine {
  const result = (e: string, request: ForwardRequest): ForwardResult => ({ flow: Float32Array.of(request.timesteps[0], e.charCodeAt(0)) });
  const engine: Engine = {
    name,
    batchKey,
    async forward(request) {
      log.push(`forward ${name}`);
      return result(name, request);
    },
    async updateCache(_u: CacheUpdate) {
      log.push(`update ${name}`);
      if (gate) await gate.update;
    },
    scoreCache: async () => new Float32Array(0),
    releaseQueries: async () => undefined,
    resetCache: async () => undefined,
    setPrompt: async () => undefined,
    readCache: async () => ({ keys: new Float32Array(0), values: new Float32Array(0), positions: new Float32Array(0), rows: 0 }),
    info: () => ({ name, provider: 'test', cacheRows: 0, pendingRows: 0 }),
    close: async () => undefined,
  };
  if (batchKey !== undefined) {
    engine.forwardBatch = async (items: BatchedForward[]) => {
      log.push(`batch ${items.map((i) => i.engine.name).join(',')}`);
      return items.map((i) => result(i.engine.name, i.request));
    };
  }
  return engine;
}

const req = (t: number, frames = 3): ForwardRequest => ({
  latent: new Float32Array(frames * 4),
  timesteps: new Float32Array(frames).fill(t),
  framePositions: new Int32Array(frames),
  keepBlockKv: false,
  keepQueries: 'none',
});

/** A hand-turned "later turn": run() runs what was scheduled so far. */
function turns(): { schedule: (fn: () => void) => void; run: () => void; waiting: () => number } {
  let queue: Array<() => void> = [];
  return {
    schedule: (fn) => void queue.push(fn),
    run: () => {
      const q = queue;
      queue = [];
      for (const fn of q) fn();
    },
    waiting: () => queue.length,
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('three streams\' forwards of one turn: one batched call when all three are in, each result its own', async () => {
  const log: Log = [];
  const loop = turns();
  const b = new ForwardBatcher(4, loop.schedule);
  const [a, bb, c] = ['a', 'b', 'c'].map((n) => b.member(recordingEngine(n, log, 'k')));
  const pa = a.forward(req(1));
  const pb = bb.forward(req(2));
  assert.equal(log, [], 'waiting for the third stream');
  const pc = c.forward(req(3));
  assert.equal(log, ['batch a,b,c'], 'issued as soon as every stream has one waiting');
  const [ra, rb, rc] = await Promise.all([pa, pb, pc]);
  assert.equal([Array.from(ra.flow), Array.from(rb.flow), Array.from(rc.flow)], [[1, 97], [2, 98], [3, 99]]);
  assert.equal(b.stats(), { calls: 1, forwards: 3, largest: 3 });
});

test('a stream that issues nothing this turn: the others go out on the next turn; maxBatch splits a group', async () => {
  const log: Log = [];
  const loop = turns();
  const b = new ForwardBatcher(2, loop.schedule);
  const m = ['a', 'b', 'c', 'd'].map((n) => b.member(recordingEngine(n, log, 'k')));
  const p = [m[0].forward(req(1)), m[1].forward(req(1))];
  assert.equal(log, ['batch a,b'], 'a full group (maxBatch 2) at once');
  p.push(m[2].forward(req(1)));
  assert.equal(log, ['batch a,b']);
  loop.run();
  assert.equal(log, ['batch a,b', 'forward c'], 'd issued nothing: c alone after the turn');
  await Promise.all(p);
});

test('different block shapes and batch keys never share a call; engines without a key forward alone', async () => {
  const log: Log = [];
  const loop = turns();
  const b = new ForwardBatcher(8, loop.schedule);
  const m = [b.member(recordingEngine('a', log, 'k')), b.member(recordingEngine('b', log, 'k')), b.member(recordingEngine('c', log, 'other')), b.member(recordingEngine('d', log, undefined)), b.member(recordingEngine('e', log, 'k'))];
  const p = [m[0].forward(req(1)), m[1].forward(req(1, 2)), m[2].forward(req(1)), m[3].forward(req(1))];
  assert.equal(log, []);
  p.push(m[4].forward(req(1)));
  assert.equal(log.sort(), ['batch a,e', 'forward b', 'forward c', 'forward d'].sort());
  await Promise.all(p);
});

test("a stream's cache update in flight holds the others' forwards until it settles, so its next forward joins them", async () => {
  const log: Log = [];
  const loop = turns();
  let open!: () => void;
  const gate = { update: new Promise<void>((r) => (open = r)) };
  const b = new ForwardBatcher(4, loop.schedule);
  const a = b.member(recordingEngine('a', log, 'k'));
  const s = b.member(recordingEngine('b', log, 'k', gate));
  const c = b.member(recordingEngine('c', log, 'k'));
  const update = s.updateCache({ rows: 0, terms: 1, perLayer: false, sources: new Int32Array(0), weights: new Float32Array(0), positions: new Float32Array(0) });
  const pa = a.forward(req(1));
  const pc = c.forward(req(1));
  loop.run();
  assert.equal(log, ['update b'], 'b is updating its cache: a and c wait');
  open();
  await update;
  await settle();
  const pb = s.forward(req(1));
  assert.equal(log, ['update b', 'batch a,c,b'], "b's next forward joined them");
  await Promise.all([pa, pb, pc]);
});

test("a member's calls reach its engine in its order: an update asked for after a waiting forward goes after it", async () => {
  const log: Log = [];
  const loop = turns();
  const b = new ForwardBatcher(4, loop.schedule);
  const a = b.member(recordingEngine('a', log, 'k'));
  b.member(recordingEngine('b', log, 'k')); // never forwards
  const pf = a.forward(req(1));
  const pu = a.updateCache({ rows: 0, terms: 1, perLayer: false, sources: new Int32Array(0), weights: new Float32Array(0), positions: new Float32Array(0) });
  const pf2 = a.forward(req(2));
  await settle();
  assert.equal(log, [], 'the forward waits for the turn; the update behind it');
  loop.run();
  await settle();
  loop.run();
  await Promise.all([pf, pu, pf2]);
  assert.equal(log, ['forward a', 'update a', 'forward a']);
});

test('a closed member leaves: the others no longer wait for it', async () => {
  const log: Log = [];
  const loop = turns();
  const b = new ForwardBatcher(4, loop.schedule);
  const a = b.member(recordingEngine('a', log, 'k'));
  const c = b.member(recordingEngine('c', log, 'k'));
  const d = b.member(recordingEngine('d', log, 'k'));
  const p = [a.forward(req(1)), c.forward(req(1))];
  await d.close();
  assert.equal(log, ['batch a,c']);
  await Promise.all(p);
});

test('a failed batched call rejects every forward in it', async () => {
  const loop = turns();
  const b = new ForwardBatcher(2, loop.schedule);
  const broken = (name: string): Engine => ({ ...recordingEngine(name, [], 'k'), forwardBatch: () => Promise.reject(new Error('device lost')) });
  const [a, c] = [b.member(broken('a')), b.member(broken('c'))];
  const results = await Promise.allSettled([a.forward(req(1)), c.forward(req(1))]);
  assert.equal(results.map((r) => r.status), ['rejected', 'rejected']);
});

test.run();
