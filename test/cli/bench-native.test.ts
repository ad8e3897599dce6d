/**
 * bench's native-engine figures (issue 18 items 1-3): the addon's own timing of the stream's forwards against the
 * time JavaScript waited (engineTimings), the late blocks against the same work run from C (--c-loop, nodeVsC),
 * a second stream in the warm process (--second-stream), and engine.cudaGraphs as the addon receives it. The CLI
 * runs on the stand-in addon (tools/stand-in/native-addon.ts): fixed per-forward and per-block figures, so
 * these tests check the plumbing and the arithmetic, never a machine's speed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { ADDON_ENV } from '../../src/engine/native/addon-loader.js';
import { cudaGraphsMode } from '../../src/engine/native/native-engine.js';
import { compareNodeWithC, engineTimings } from '../../src/cli/commands/bench-native.js';
import { tempDir } from '../encode/helpers.js';
import { STAND_IN_FORWARD_MS, STAND_IN_LOOP_MS, STAND_IN_PHASE_MS, standInEngines, standInModes, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { runCli } from '../helpers/cli.js';


const cli = (args: string[], env: NodeJS.ProcessEnv) => runCli(args, { env });

test('engineTimings: per-forward means of the addon sums, the hop = JavaScript ms - addon ms, host in the call = wall - GPU', () => {
  const stats = { forwards: 4, wallMs: 400, issueMs: 8, gpuMs: 380, idleMs: 12, graphLaunches: 2, graphCaptures: 1, graphFallback: 0 };
  const t = engineTimings(stats, [101, 103, 102, 106], true)!;
  assert.is(t.forwards, 4);
  assert.is(t.jsMsPerForward, 103);
  assert.is(t.wallMsPerForward, 100);
  assert.is(t.gpuMsPerForward, 95);
  assert.is(t.issueMsPerForward, 2);
  assert.is(t.idleMsPerForward, 3);
  assert.is(t.hopMsPerForward, 3);
  assert.is(t.hostInCallMsPerForward, 5);
  assert.equal([t.cudaGraphs, t.graphLaunches, t.graphCaptures, t.graphFallback], [true, 2, 1, false]);
  assert.is(engineTimings({ ...stats, graphFallback: 1 }, [1], true)!.graphFallback, true);
  assert.is(engineTimings({ ...stats, forwards: 0 }, [1], false), null, 'no forwards: nothing to say');
});

test('compareNodeWithC: medians of both sides and their ratios', () => {
  const c = { blockMs: [50, 40, 45], forwardsMs: [38, 30, 36], updateMs: [2, 2, 4] };
  const r = compareNodeWithC({ forwardsMs: [40, 44, 42], engineMs: [45, 47, 46], blockMs: [60, 50, 55] }, c, 1234);
  assert.equal(
    [r.blocks, r.cacheRows, r.cForwardsMs, r.cUpdateMs, r.cBlockMs, r.nodeForwardsMs, r.nodeEngineMs, r.nodeBlockMs],
    [3, 1234, 36, 2, 45, 42, 46, 55],
  );
  assert.is(r.forwardsRatio, 42 / 36);
  assert.is(r.engineRatio, 46 / 38);
  assert.is(r.blockRatio, 55 / 45);
});

test('engine.cudaGraphs: auto = on for bf16 on one GPU, on = any precision on one GPU, off = never; several GPUs never', () => {
  assert.is(cudaGraphsMode({ cudaGraphs: 'auto', dtype: 'float16' }, 1), 1);
  assert.is(cudaGraphsMode({ cudaGraphs: 'auto', dtype: 'float32' }, 1), 0);
  assert.is(cudaGraphsMode({ cudaGraphs: 'on', dtype: 'float32' }, 1), 1);
  assert.is(cudaGraphsMode({ cudaGraphs: 'off', dtype: 'float16' }, 1), 0);
  assert.is(cudaGraphsMode({ cudaGraphs: 'on', dtype: 'float16' }, 2), 0);
  assert.is(configSchema.parse({}).engine.cudaGraphs, 'auto');
  assert.throws(() => configSchema.parse({ engine: { cudaGraphs: 'yes' } }));
});

test('the native engine hands engine.cudaGraphs to the addon', async () => {
  const addon = writeStandInAddon(tempDir('bench-native-graphs'), { gpus: ['Stand-in H200', 'Stand-in H200'], attention: 'stand-in' });
  await withAddonFile(addon.file, async () => {
    const engines: NonNullable<ConfigInput['engine']>[] = [
      { name: 'native', dtype: 'float16' },
      { name: 'native', dtype: 'float32' },
      { name: 'native', dtype: 'float32', cudaGraphs: 'on' },
      { name: 'native', dtype: 'float16', cudaGraphs: 'off' },
      { name: 'native', dtype: 'float16', cudaGraphs: 'on', stages: 2 },
    ];
    for (const engine of engines) await (await createEngine(configSchema.parse({ engine }))).close();
    assert.equal(
      standInModes(addon).map((m) => m.mode),
      [1, 0, 1, 0, 0],
    );
    assert.is(standInEngines(addon).length, 5, 'the graph modes are not engines');
  });
});

test('bench --json --c-loop --second-stream under the native engine: engineTimings, nodeVsC and secondStream', async () => {
  const addon = writeStandInAddon(tempDir('bench-native-cli'), { gpus: ['Stand-in H200'], attention: 'stand-in' });
  const run = await cli(
    ['bench', '--blocks', '4', '--json', '--no-encode', '--c-loop', '3', '--second-stream', '2', '--set', 'engine.name=native', '--set', 'engine.dtype=float16'],
    { [ADDON_ENV]: addon.file },
  );
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim());
  const t = report.engineTimings;
  // every forward of the stream, the last block's clean pass included, seen by both sides
  assert.ok(t.forwards >= 4 * 4, `forwards ${t.forwards}`);
  assert.is(t.wallMsPerForward, STAND_IN_FORWARD_MS);
  assert.is(t.gpuMsPerForward, STAND_IN_FORWARD_MS - 1);
  assert.ok(Math.abs(t.hopMsPerForward - (t.jsMsPerForward - t.wallMsPerForward)) < 1e-9);
  assert.is(t.cudaGraphs, true);
  const c = report.nodeVsC;
  assert.equal([c.blocks, c.cBlockMs, c.cForwardsMs, c.cUpdateMs], [3, ...STAND_IN_LOOP_MS]);
  assert.ok(Math.abs(c.forwardsRatio - c.nodeForwardsMs / STAND_IN_LOOP_MS[1]) < 1e-9);
  assert.ok(c.cacheRows > 0, 'measured at the late blocks\' cache size');
  const s = report.secondStream;
  assert.is(s.blocks, 2);
  assert.type(s.firstBlockMs, 'number');
  assert.ok(Math.abs(s.firstVsSteady - (s.firstBlockMs / s.steadyMsPerBlock - 1)) < 1e-9);
  assert.equal([s.attentionPlansBuilt, s.attentionPlansReused], [0, 0]);
  assert.is(standInEngines(addon).length, 2, 'the second stream has its own engine');
});

test('bench --json --phases under the native engine: device ms per block in each phase of the profiled C-loop blocks', async () => {
  const addon = writeStandInAddon(tempDir('bench-native-phases'), { gpus: ['Stand-in H200'], attention: 'stand-in' });
  const run = await cli(
    ['bench', '--blocks', '3', '--json', '--no-encode', '--phases', '2', '--set', 'engine.name=native', '--set', 'engine.dtype=fp8'],
    { [ADDON_ENV]: addon.file },
  );
  assert.is(run.code, 0, run.stderr);
  const p = JSON.parse(run.stdout.trim()).phases;
  // the stream's forwards were not profiled: only the 2 blocks' (the steps + the clean pass each)
  const forwardsPerBlock = loadConfig().generation.steps.length + 1;
  assert.equal(Object.keys(p.msPerBlock), ['embed', 'products', 'selfAttention', 'crossAttention', 'elementwise', 'head']);
  assert.equal(Object.values(p.msPerBlock), STAND_IN_PHASE_MS.map((ms) => ms * forwardsPerBlock));
  assert.is(p.forwardsMsPerBlock, STAND_IN_PHASE_MS.reduce((a, b) => a + b, 0) * forwardsPerBlock);
  assert.equal([p.blocks, p.blockMs, p.updateMs], [2, STAND_IN_LOOP_MS[0], STAND_IN_LOOP_MS[2]]);
  assert.ok(p.cacheRows > 0, "profiled at the late blocks' cache size");
});

test('bench --c-loop and --phases need the native engine; --second-stream takes 0 or at least 2 blocks', async () => {
  for (const flag of ['--c-loop', '--phases']) {
    const ort = await cli(['bench', '--blocks', '2', '--json', '--no-encode', flag, '2'], {});
    assert.is(ort.code, 2, ort.stderr);
    assert.match(ort.stderr, new RegExp(`${flag} runs the native engine's C loop`));
  }
  const one = await cli(['bench', '--blocks', '2', '--json', '--no-encode', '--second-stream', '1'], {});
  assert.is(one.code, 2, one.stderr);
  assert.match(one.stderr, /--second-stream/);
});

test.run();
