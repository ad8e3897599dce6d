/**
 * Several streams at once (engine.maxBatch, bench --streams): the figures' arithmetic; the generator's output with
 * the streams batched equals it without, to the bit, on the stand-in native addon whose flows follow each forward's
 * inputs (and the batches really happened); the CLI's report and its refusals.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { patchConfig } from '../../src/config/load.js';
import { loadConfig } from '../../src/config/load.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { ForwardBatcher } from '../../src/engine/forward-batcher.js';
import { ADDON_ENV } from '../../src/engine/native/addon-loader.js';
import type { Engine } from '../../src/engine/types.js';
import { createGenerator } from '../../src/loop/generator.js';
import { parseStreamCounts } from '../../src/cli/commands/bench.js';
import { streamsFigures } from '../../src/cli/commands/bench-streams.js';
import { tempDir } from '../encode/helpers.js';
import { standInBatches, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { runCli } from '../helpers/cli.js';

const addon = writeStandInAddon(tempDir('bench-streams'), { gpus: ['Stand-in H200'], attention: 'stand-in', inputFlows: true });

test('streamsFigures: frames of every stream in the late half over the time since all reached it; periods per stream', () => {
  const block = (frames: number, totalMs = 10) => ({ frames: Array.from({ length: frames }, () => new Uint8Array(0)), timings: { totalMs } as never });
  // two streams, 4 blocks each, 3 latent frames (12 video frames) a block
  const handed = [
    [100, 200, 300, 400],
    [150, 250, 350, 450],
  ];
  const blocks = [[block(9, 50), block(12), block(12), block(12)], [block(9, 70), block(12), block(12), block(12)]];
  const f = streamsFigures(handed, blocks, 3);
  assert.is(f.lateFrom, 2);
  // from 250 (both handed out block 1) to 450: blocks 2, 3 of each stream = 4 blocks
  assert.is(f.latentFps, (4 * 3) / 0.2);
  assert.is(f.videoFps, (4 * 12) / 0.2);
  assert.is(f.msPerBlock, 100);
  assert.equal(f.perStreamMsPerBlock, [100, 100]);
  assert.is(f.firstBlockMs, 60);
  assert.is(streamsFigures(handed, blocks.map((b) => b.map(() => block(0))), 3).videoFps, null, 'no decoder: no video frames');
});

test('--streams counts: positive integers, comma-separated', () => {
  assert.equal(parseStreamCounts('1,2, 4,8'), [1, 2, 4, 8]);
  assert.equal(parseStreamCounts('3'), [3]);
  for (const bad of ['0', '2,x', '', '1.5', '65']) assert.throws(() => parseStreamCounts(bad), /--streams/);
});

/** Two streams of the demo model on stand-in native engines, 4 blocks each: every block's frames. */
async function twoStreams(maxBatch: number): Promise<Uint8Array[][]> {
  return withAddonFile(addon.file, async () => {
    const base = patchConfig(loadConfig(), [{ engine: { name: 'native', dtype: 'float16', warmup: false } }], 'test');
    const engines: Engine[] = [await createEngine(base), await createEngine(base)];
    const batcher = maxBatch > 1 ? new ForwardBatcher(maxBatch) : null;
    try {
      const generators = await Promise.all(
        engines.map((e, i) =>
          createGenerator(patchConfig(base, [{ generation: { seed: 7 + i, opening: 'noise' } }], 'test'), { engine: batcher ? batcher.member(e) : e }),
        ),
      );
      const frames = await Promise.all(
        generators.map(async (g) => {
          const out: Uint8Array[] = [];
          for (let b = 0; b < 4; b++) out.push(...(await g.next()).frames);
          await g.close();
          return out;
        }),
      );
      return frames;
    } finally {
      for (const e of engines) await e.close();
    }
  });
}

test('two streams batched (engine.maxBatch 2) give the same frames, to the bit, as the streams alone; the forwards went out in pairs', async () => {
  const alone = await twoStreams(1);
  const batches = standInBatches(addon);
  const before = batches.length;
  const batched = await twoStreams(2);
  const sizes = batches.slice(before);
  assert.ok(sizes.length >= 10, `batched calls: ${sizes.length}`);
  assert.ok(sizes.every((n) => n === 2), `sizes ${sizes.join(',')}`);
  for (const s of [0, 1]) {
    assert.is(batched[s].length, alone[s].length);
    batched[s].forEach((f, i) => assert.ok(Buffer.from(f).equals(Buffer.from(alone[s][i])), `stream ${s} frame ${i}`));
  }
  assert.ok(alone[0].some((f, i) => !Buffer.from(f).equals(Buffer.from(alone[1][i]))), 'the two streams differ');
});

test('bench --streams 1,2 on the stand-in addon: one run per count, batched with engine.maxBatch 2, taking turns with 1', async () => {
  const env = { [ADDON_ENV]: addon.file };
  const args = ['bench', '--streams', '1,2', '--blocks', '3', '--json', '--set', 'engine.name=native', '--set', 'engine.dtype=float16', '--set', 'engine.warmup=false'];
  for (const maxBatch of [2, 1]) {
    const r = await runCli([...args, '--set', `engine.maxBatch=${maxBatch}`], { env });
    assert.is(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.is(report.maxBatch, maxBatch);
    assert.match(report.engine, /^native\/cuda:0 \(Stand-in H200\)/);
    assert.equal(report.runs.map((x: { streams: number }) => x.streams), [1, 2]);
    const two = report.runs[1];
    assert.is(two.batched, maxBatch === 2);
    assert.is(two.largestCall, maxBatch === 2 ? 2 : 1);
    assert.is(two.perStreamMsPerBlock.length, 2);
    for (const key of ['latentFps', 'videoFps', 'msPerBlock', 'firstBlockMs']) assert.ok(Number.isFinite(two[key]) && two[key] > 0, key);
  }
});

test('bench --streams 2 --also-turns: the count batched, then taking turns on the same engines', async () => {
  const r = await runCli(
    ['bench', '--streams', '2', '--also-turns', '--blocks', '3', '--json', '--set', 'engine.name=native', '--set', 'engine.dtype=float16', '--set', 'engine.warmup=false', '--set', 'engine.maxBatch=4'],
    { env: { [ADDON_ENV]: addon.file } },
  );
  assert.is(r.code, 0, r.stderr);
  const runs = JSON.parse(r.stdout).runs as Array<{ streams: number; batched: boolean; largestCall: number }>;
  assert.equal(runs.map((x) => [x.streams, x.batched, x.largestCall]), [[2, true, 2], [2, false, 1]]);
});

test('bench --streams refuses bad counts and the one-stream options (exit 2)', async () => {
  for (const extra of [['--streams', '0'], ['--streams', '2', '--c-loop', '3'], ['--streams', '2', '--second-stream', '3'], ['--also-turns'], ['--streams', '2', '--also-turns']]) {
    const r = await runCli(['bench', '--blocks', '3', ...extra]);
    assert.is(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--streams|--c-loop|--second-stream|--also-turns/);
  }
  assert.is(configSchema.parse({}).engine.maxBatch, 1, 'off by default');
  assert.throws(() => configSchema.parse({ engine: { maxBatch: 0 } }));
});

test.run();
