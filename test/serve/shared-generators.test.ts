/**
 * Live streams sharing one generator thread (engine.maxBatch >= 2), on the stand-in native addon whose flows follow
 * each forward's inputs: two streams give the same frames, to the bit, as each alone in a thread of its own; their
 * forwards really went out joined (the thread's batch counts); one stream closing mid-way leaves the other's frames
 * as they would be alone; a bad prompt fails only its own stream; the server keeps one thread per stream with
 * engine.maxBatch 1 and shares one with 2.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig, patchConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { ADDON_ENV } from '../../src/engine/native/addon-loader.js';
import { createHostedGenerator } from '../../src/serve/generator-host.js';
import { SharedGenerators } from '../../src/serve/shared-generators.js';
import { isSinkstreamError } from '../../src/errors.js';
import { writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { tempDir } from '../encode/helpers.js';
import { startTestServer } from './helpers/server-fixture.js';

const addon = writeStandInAddon(tempDir('shared-generators'), { gpus: ['Stand-in H200'], attention: 'stand-in', inputFlows: true });
// worker threads take the environment as it is when they start
process.env[ADDON_ENV] = addon.file;

function streamConfig(seed: number, maxBatch: number): Config {
  return patchConfig(loadConfig(), [{ engine: { name: 'native', dtype: 'float16', warmup: false, maxBatch }, generation: { seed, opening: 'noise' } }], 'test');
}

/** Every frame of `blocks` blocks of one stream alone, in a thread of its own (as serve runs streams with maxBatch 1). */
async function alone(seed: number, blocks: number): Promise<Buffer[]> {
  const g = await createHostedGenerator(streamConfig(seed, 1));
  try {
    const frames: Buffer[] = [];
    for (let b = 0; b < blocks; b++) frames.push(...(await g.next()).frames.map((f) => Buffer.from(f)));
    return frames;
  } finally {
    await g.close();
  }
}

function sameFrames(got: Buffer[], want: Buffer[], label: string): void {
  assert.is(got.length, want.length, `${label}: frames`);
  got.forEach((f, i) => assert.ok(f.equals(want[i]), `${label}: frame ${i}`));
}

test('two streams in one shared thread: the frames of each alone, to the bit; their forwards joined', async () => {
  const want = [await alone(7, 4), await alone(8, 4)];
  assert.ok(!want[0][0].equals(want[1][0]) || want[0].some((f, i) => !f.equals(want[1][i])), 'the two streams differ');
  const shared = new SharedGenerators(streamConfig(7, 2));
  try {
    const streams = [await shared.create(streamConfig(7, 2)), await shared.create(streamConfig(8, 2))];
    const got: Buffer[][] = [[], []];
    // Both streams asked for each block together. Whether a block's first forwards meet in the worker depends on how
    // the two requests cross the thread boundary (a busy machine can split them), so this asserts that forwards were
    // joined, not that all were: the batcher's exact grouping is test/engine/forward-batcher.test.ts's, on its own clock.
    for (let b = 0; b < 4; b++) {
      const blocks = await Promise.all(streams.map((g) => g.next()));
      blocks.forEach((block, s) => got[s].push(...block.frames.map((f) => Buffer.from(f))));
    }
    sameFrames(got[0], want[0], 'stream 0');
    sameFrames(got[1], want[1], 'stream 1');
    const stats = await shared.batchStats();
    assert.ok(stats.forwards >= 20, `forwards ${stats.forwards}`);
    assert.is(stats.largest, 2, 'forwards of the two streams went out in one call');
    assert.ok(stats.calls < stats.forwards, `joined calls: ${stats.calls} calls, ${stats.forwards} forwards`);
    for (const g of streams) await g.close();
  } finally {
    await shared.close();
  }
});

test("a stream that closes mid-way (its engine and cache freed) leaves the other's frames as alone; a bad prompt fails only its stream", async () => {
  const want = await alone(8, 5);
  const shared = new SharedGenerators(streamConfig(7, 2));
  try {
    const first = await shared.create(streamConfig(7, 2));
    const second = await shared.create(streamConfig(8, 2));
    const got: Buffer[] = [];
    for (let b = 0; b < 2; b++) {
      const [, block] = await Promise.all([first.next(), second.next()]);
      got.push(...block.frames.map((f) => Buffer.from(f)));
    }
    await first.close();
    try {
      await first.next();
      assert.unreachable('a closed stream runs no more blocks');
    } catch (e) {
      assert.ok(isSinkstreamError(e), String(e));
    }
    try {
      await shared.create(patchConfig(streamConfig(9, 2), [{ generation: { prompt: 'zzqx unknownword' } }], 'test'));
      assert.unreachable('a prompt outside the vocabulary is refused');
    } catch (e) {
      assert.ok(isSinkstreamError(e) && e.isBadInput, String(e));
    }
    const before = await shared.batchStats();
    for (let b = 2; b < 5; b++) got.push(...(await second.next()).frames.map((f) => Buffer.from(f)));
    sameFrames(got, want, 'the stream left alone');
    const after = await shared.batchStats();
    assert.is(after.forwards - before.forwards, after.calls - before.calls, 'alone now: one forward a call');
    await second.close();
  } finally {
    await shared.close();
  }
});

test('serve: engine.maxBatch 1 keeps a generator thread per stream, 2 shares one per engine setup', async () => {
  for (const [maxBatch, threads] of [
    [1, 'per stream'],
    [2, 'shared'],
  ] as const) {
    const server = await startTestServer({ engine: { name: 'native', dtype: 'float16', warmup: false, maxBatch } }, { scheduling: false });
    try {
      assert.is(server.liveGeneratorThreads, threads);
    } finally {
      await server.close();
    }
  }
});

test.run();
