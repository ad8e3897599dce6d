/**
 * Decode overlapped with the engine: a fake engine that logs its calls and a decoder whose decodes finish
 * only when the test says so. The next block's forwards start while a block is still being decoded;
 * blocks come out in order with the frames of a plain sequential run; decode errors fail their block.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { SinkstreamError } from '../../src/errors.js';
import type { Engine } from '../../src/engine/types.js';
import type { Decoder } from '../../src/decode/decoder.js';
import { SpaceToDepthDecoder } from '../../src/decode/space-to-depth.js';
import type { FrameBlock } from '../../src/loop/types.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';

const tiny = ['model.weights=synthetic', 'model.arch.layers=2', 'engine.threads=1', 'generation.opening=noise', 'generation.steps=[1000,500]'];
const config = loadConfig({ set: tiny });

/** Flow = a function of the latent and the positions, so the frames depend on every block's history of calls. */
function loggingEngine(log: string[]): Engine {
  return rowCountingEngine({
    name: 'logging',
    onForward: async (r) => {
      log.push(r.keepBlockKv ? `clean@${r.framePositions[0]}` : `step@${r.framePositions[0]}`);
      await new Promise((resolve) => setImmediate(resolve));
    },
    flow: (r, rows) => {
      const flow = new Float32Array(r.latent.length);
      for (let i = 0; i < flow.length; i++) flow[i] = 0.5 * r.latent[i] + 0.01 * (rows / 64) - 0.1 * r.framePositions[0];
      return flow;
    },
  });
}

/** A space-to-depth decoder whose decode of block b finishes when release(b) is called (or fails with fail(b, e)). */
function gatedDecoder(log: string[]) {
  const inner = new SpaceToDepthDecoder(config.decoder.factor, config.model.latentHeight, config.model.latentWidth);
  const gates: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  const opened: Array<Promise<void>> = [];
  let calls = 0;
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;
  const gate = (b: number) => {
    while (opened.length <= b) {
      let g!: { resolve: () => void; reject: (e: unknown) => void };
      opened.push(new Promise<void>((resolve, reject) => (g = { resolve, reject })));
      gates.push(g);
    }
    return b;
  };
  const decoder: Decoder = {
    kind: 'space-to-depth',
    width: inner.width,
    height: inner.height,
    backend: inner.backend,
    framesPerLatentFrame: 1,
    framesForFirstLatentFrame: 1,
    decode(latent) {
      const b = gate(calls++);
      log.push(`decode ${b} start`);
      // One decode at a time, as the real decoders keep their calls in order.
      const run = chain.then(async () => {
        await opened[b];
        log.push(`decode ${b} end`);
        return inner.decode(latent);
      });
      chain = run.catch(() => undefined);
      return run;
    },
    async reset() {},
    async close() {
      closed = true;
    },
  };
  return {
    decoder,
    release: (b: number) => gates[gate(b)].resolve(),
    fail: (b: number, e: unknown) => gates[gate(b)].reject(e),
    isClosed: () => closed,
  };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

function sameFrames(a: Uint8Array[], b: Uint8Array[]): boolean {
  return a.length === b.length && a.every((f, i) => Buffer.compare(Buffer.from(f), Buffer.from(b[i])) === 0);
}

async function sequentialRun(blocks: number): Promise<FrameBlock[]> {
  const g = await createGenerator(config, { engine: loggingEngine([]), decoder: new SpaceToDepthDecoder(config.decoder.factor, config.model.latentHeight, config.model.latentWidth) });
  const out: FrameBlock[] = [];
  for (let b = 0; b < blocks; b++) out.push(await g.next());
  await g.close();
  return out;
}

test("a block's clean pass goes to the engine while its decode is still running", async () => {
  const log: string[] = [];
  const gated = gatedDecoder(log);
  const g = await createGenerator(config, { engine: loggingEngine(log), decoder: gated.decoder });
  const first = g.next();
  await until('block 0 clean pass', () => log.includes('clean@0'));
  assert.not.ok(log.includes('decode 0 end'), 'the clean pass started before the decode finished');
  gated.release(0);
  const block = await first;
  assert.is(block.index, 0);
  assert.is(block.frames.length, config.generation.blockFrames);
  await g.close();
});

test('a caller one block ahead: block 1 is denoised while block 0 decodes; blocks come out in order, frames as a sequential run', async () => {
  const reference = await sequentialRun(3);
  const log: string[] = [];
  const gated = gatedDecoder(log);
  const g = await createGenerator(config, { engine: loggingEngine(log), decoder: gated.decoder });
  const order: number[] = [];
  const asked = [g.next(), g.next(), g.next()].map((p) => p.then((b) => (order.push(b.index), b)));
  const F = config.generation.blockFrames;
  // Block 1's denoising steps (positions F..) and even its decode start while block 0's decode is held.
  await until('block 1 decode start', () => log.includes('decode 1 start'));
  const stepsOfBlock1 = log.filter((e) => e === `step@${F}`).length;
  assert.is(stepsOfBlock1, 2, 'both steps of block 1 ran');
  assert.not.ok(log.includes('decode 0 end'));
  assert.equal(order, [], 'nothing handed out before its decode');
  // Decodes released out of order: block 1 still waits for block 0.
  gated.release(2);
  gated.release(1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(order, []);
  gated.release(0);
  const blocks = await Promise.all(asked);
  assert.equal(order, [0, 1, 2]);
  assert.equal(blocks.map((b) => b.firstFrame), [0, F, 2 * F]);
  blocks.forEach((b, i) => assert.ok(sameFrames(b.frames, reference[i].frames), `block ${i}: frames of the sequential run`));
  assert.ok(blocks.every((b) => b.timings.decodeMs >= 0 && b.timings.engineMs > 0 && b.timings.totalMs > 0));
  await g.close();
});

test("a block asked for after the previous block's clean pass has finished: its engine time counts that pass", async () => {
  let cleanPassOver!: () => void;
  const cleanPassDone = new Promise<void>((resolve) => (cleanPassOver = resolve));
  const slowClean = rowCountingEngine({
    name: 'slow-clean',
    onForward: async (r) => {
      if (!r.keepBlockKv) return;
      await new Promise((resolve) => setTimeout(resolve, 150));
      if (r.framePositions[0] === 0) cleanPassOver();
    },
    flow: (r) => new Float32Array(r.latent.length).map((_, i) => 0.5 * r.latent[i]),
  });
  const g = await createGenerator(config, { engine: slowClean, decoder: new SpaceToDepthDecoder(config.decoder.factor, config.model.latentHeight, config.model.latentWidth) });
  await g.next();
  // the caller comes back only after block 0's clean pass (at least 150 ms in the engine) is over
  await cleanPassDone;
  const b1 = await g.next();
  // the pass ran before block 1 began, and is still block 1's engine work (the cache took block 0 in for it)
  assert.ok(b1.timings.engineMs >= 140, `block 1: engine ${b1.timings.engineMs} ms`);
  await g.close();
});

test('a failed decode fails its block and every later one; close() waits for the decodes in flight', async () => {
  const log: string[] = [];
  const gated = gatedDecoder(log);
  const g = await createGenerator(config, { engine: loggingEngine(log), decoder: gated.decoder });
  const b0 = g.next();
  const b1 = g.next();
  const b2 = g.next();
  await until('block 2 decode start', () => log.includes('decode 2 start'));
  gated.release(0);
  gated.fail(1, new SinkstreamError('ERR_ENGINE', 'decoder exploded'));
  gated.release(2);
  assert.is((await b0).index, 0);
  const e1 = await b1.catch((e: unknown) => e);
  assert.instance(e1, SinkstreamError);
  assert.match((e1 as Error).message, /decoder exploded/);
  const e2 = await b2.catch((e: unknown) => e);
  assert.instance(e2, SinkstreamError);
  assert.match((e2 as Error).message, /block 2: not decoded, the decoder failed at block 1: .*decoder exploded/);
  const e3 = await g.next().catch((e: unknown) => e);
  assert.match((e3 as Error).message, /block 3: the decoder failed at block 1/);
  await g.close();

  // close() drains: it returns only after the held decode finished, then closes the decoder.
  const log2: string[] = [];
  const held = gatedDecoder(log2);
  const g2 = await createGenerator(config, { engine: loggingEngine(log2), decoder: held.decoder });
  const pending = g2.next();
  await until('decode start', () => log2.includes('decode 0 start'));
  let closedAt = -1;
  const closing = g2.close().then(() => (closedAt = log2.length));
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(closedAt, -1, 'close waits for the decode');
  assert.not.ok(held.isClosed());
  held.release(0);
  await closing;
  assert.ok(held.isClosed());
  assert.is((await pending).frames.length, config.generation.blockFrames);
});

test.run();
