/**
 * Batched forwards through the native engine's wrapper, on the stand-in addon with flows computed from each forward's
 * inputs (and its engine's cache rows and prompt): one addon call for the batch, each stream's result its own and equal
 * to its engine's forward alone, the engines' queues held while it runs, and the cases that cannot batch.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { canBatch, forwardTogether } from '../../src/engine/batch.js';
import { modelDims } from '../../src/model/dims.js';
import type { Engine, ForwardRequest } from '../../src/engine/types.js';
import { tempDir } from '../encode/helpers.js';
import { rejectsWith } from '../helpers/assertions.js';
import { standInBatches, standInCalls, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { wave } from './helpers/engine-checks.js';

const addon = writeStandInAddon(tempDir('native-batch'), { gpus: ['Stand-in H200'], attention: 'stand-in', timeline: true, inputFlows: true });
const config = configSchema.parse({ engine: { name: 'native', dtype: 'float16' } });
const dims = modelDims(config);
const F = config.generation.blockFrames;
const size = dims.latentChannels * F * dims.latentHeight * dims.latentWidth;

function request(seed: number, t: number, first: number, keepBlockKv = false): ForwardRequest {
  return {
    latent: wave(size, seed),
    timesteps: new Float32Array(F).fill(t),
    framePositions: Int32Array.from({ length: F }, (_, f) => first + f),
    keepBlockKv,
    keepQueries: 'none',
  };
}

async function withEngines(n: number, body: (engines: Engine[]) => Promise<void>, engineConfig = config): Promise<void> {
  await withAddonFile(addon.file, async () => {
    const engines: Engine[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const e = await createEngine(engineConfig);
        engines.push(e);
        await e.setPrompt(wave(dims.textLen * dims.textDim, 10 + i));
      }
      await body(engines);
    } finally {
      for (const e of engines) await e.close();
    }
  });
}

const sameBytes = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Gives engine i a cache of `rows` rows (the stand-in counts them; its flows depend on the count). */
async function fill(engine: Engine, rows: number): Promise<void> {
  await engine.forward(request(99, 0, 0, true));
  await engine.updateCache({ rows, terms: 1, perLayer: false, sources: new Int32Array(rows), weights: new Float32Array(rows).fill(1), positions: new Float32Array(rows * 3) });
}

test('three streams in one addon call: each result is its own engine\'s forward alone, to the bit', () =>
  withEngines(3, async (engines) => {
    await fill(engines[1], 7);
    await fill(engines[2], 11);
    // not in the engines' creation order (the wrapper hands the addon them in that order and maps the results back)
    const items = [2, 0, 1].map((i) => ({ engine: engines[i], request: request(i, 1000 - 250 * i, 3 * i, i === 2) }));
    assert.ok(canBatch(items));
    const batches = standInBatches(addon);
    const before = batches.length;
    const together = await forwardTogether(items);
    assert.equal(batches.slice(before), [3], 'one call of three forwards');
    assert.is(engines[2].info().pendingRows, F * dims.tokensPerFrame, 'keepBlockKv kept on its own engine');
    assert.is(engines[0].info().pendingRows, 0);
    for (const [i, item] of items.entries()) {
      const alone = await item.engine.forward(item.request);
      assert.ok(sameBytes(together[i].flow, alone.flow), `stream ${i}: the batch's flow is its engine's own`);
    }
    // the streams really differ (a mix-up would show)
    assert.not.ok(sameBytes(together[0].flow, together[1].flow));
  }),
);

test('a batch writes into each request\'s flowInto; a forward asked for on a member meanwhile waits for the batch', () =>
  withEngines(2, async (engines) => {
    const into = new Float32Array(size).fill(Number.NaN);
    const items = [
      { engine: engines[0], request: { ...request(1, 750, 3), flowInto: into } },
      { engine: engines[1], request: request(2, 750, 3) },
    ];
    const calls = standInCalls(addon);
    const before = calls.length;
    const batch = forwardTogether(items);
    const after = engines[1].forward(request(3, 500, 3));
    const [r0] = await batch;
    await after;
    assert.ok(r0.flow === into, "the caller's array");
    assert.ok(into.every(Number.isFinite), 'written');
    const mine = calls.slice(before).map((c) => c.call);
    assert.equal(mine, ['forwardBatch', 'forward']);
    assert.ok(calls[before + 1].calledAt >= calls[before].settledAt, 'the member\'s own forward waited for the batch');
  }),
);

test('what cannot batch: one engine twice, an engine over several GPUs; forwardTogether then runs them one by one', async () => {
  await withEngines(2, async (engines) => {
    const twice = [
      { engine: engines[0], request: request(1, 750, 3) },
      { engine: engines[0], request: request(2, 750, 3) },
    ];
    assert.not.ok(canBatch(twice));
    await rejectsWith(engines[0].forwardBatch!(twice), 'ERR_ENGINE');
    const before = standInBatches(addon).length;
    const results = await forwardTogether(twice);
    assert.is(results.length, 2);
    assert.is(standInBatches(addon).length, before, 'no batched call');
  });
  const pipeline = configSchema.parse({ engine: { name: 'native', dtype: 'float16', stages: 2, devices: [0, 0] } });
  await withEngines(2, async (engines) => {
    assert.is(engines[0].batchKey, undefined, 'a pipeline engine has no batch key');
    const items = engines.map((engine, i) => ({ engine, request: request(i, 750, 3) }));
    assert.not.ok(canBatch(items));
    assert.is((await forwardTogether(items)).length, 2);
  }, pipeline);
});

test('a request of the wrong shape in a batch rejects with ERR_ENGINE before anything runs', () =>
  withEngines(2, async (engines) => {
    const before = standInBatches(addon).length;
    const bad = { ...request(1, 750, 3), latent: new Float32Array(size - 1) };
    await rejectsWith(engines[0].forwardBatch!([{ engine: engines[0], request: request(2, 750, 3) }, { engine: engines[1], request: bad }]), 'ERR_ENGINE');
    assert.is(standInBatches(addon).length, before);
  }),
);

test.run();
