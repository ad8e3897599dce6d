/**
 * engine.dtype: fp8 (issue 18 item 4, FP8 products) as the runtime hands it to the addon: the key's checks, the mode
 * each native engine receives (single GPU and pipeline), the precision it reports, batching kept apart from bf16
 * engines, and the CLI's exit status where it cannot run. On the stand-in addon (tools/stand-in/native-addon.ts); the
 * FP8 arithmetic runs in test/engine/native.test.ts on a GPU and is measured in native/NOTES.md.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { cudaGraphsMode } from '../../src/engine/native/native-engine.js';
import { standInEngines, standInModes, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { tempDir } from '../encode/helpers.js';
import { runCli } from '../helpers/cli.js';

test('engine.dtype fp8: the native engine only; FP8 attention goes with it; CUDA graphs on by default', () => {
  const ok = loadConfig({ overrides: { engine: { name: 'native', dtype: 'fp8', attention: 'fp8' } } });
  assert.is(ok.engine.dtype, 'fp8');
  assert.throws(() => loadConfig({ overrides: { engine: { dtype: 'fp8' } } }), /engine\.dtype.*needs engine\.name 'native' \(engine\.name is 'ort'\)/);
  assert.throws(() => loadConfig({ overrides: { engine: { name: 'native', dtype: 'fp4' } } }), /engine\.dtype/);
  assert.is(cudaGraphsMode({ cudaGraphs: 'auto', dtype: 'fp8' }, 1), 1);
  assert.is(cudaGraphsMode({ cudaGraphs: 'auto', dtype: 'fp8' }, 2), 0, 'never over several GPUs');
});

test('the native engine sets FP8 products on the addon only for engine.dtype fp8, and reports them', async () => {
  const addon = writeStandInAddon(tempDir('fp8-products'), { gpus: ['Stand-in H200', 'Stand-in H200'], attention: 'cuDNN 9.14.0 (stand-in)' });
  await withAddonFile(addon.file, async () => {
    const engines: NonNullable<ConfigInput['engine']>[] = [
      { name: 'native', dtype: 'float16' },
      { name: 'native', dtype: 'fp8' },
      { name: 'native', dtype: 'fp8', stages: 2 },
      { name: 'native', dtype: 'fp8', attention: 'fp8' },
    ];
    const info: Array<{ precision?: string; provider?: string; batchKey?: string }> = [];
    for (const engine of engines) {
      const e = await createEngine(configSchema.parse({ engine }));
      info.push({ ...e.info(), batchKey: e.batchKey });
      await e.close();
    }
    assert.equal(standInEngines(addon).map((e) => e.precision), [0, 0, 0, 0], 'fp8 runs on the bf16 engine');
    const modes = standInModes(addon, 'productPrecision');
    assert.equal(modes.map((m) => [m.mode, m.devices]), [[1, [0]], [1, [0, 1]], [1, [0]]], 'the bf16 engine is left at its default');
    assert.equal(standInModes(addon, 'attentionPrecision').map((m) => m.mode), [1], 'attention is its own key');
    assert.is(info[0].precision, 'bf16');
    assert.is(info[1].precision, 'bf16+fp8');
    assert.match(info[1].provider ?? '', /bf16 with fp8 products \(E4M3, per-row scales\)/);
    // a batched forward runs in the first engine's precision: bf16 and fp8 engines never share a batch
    assert.type(info[0].batchKey, 'string');
    assert.type(info[1].batchKey, 'string');
    assert.is.not(info[1].batchKey, info[0].batchKey);
    assert.is.not(info[3].batchKey, info[1].batchKey);
  });
});

test('sinkstream render with engine.dtype=fp8 on the ORT engine: exit 2, the key named, nothing written', async () => {
  const dir = tempDir('fp8-products-cli');
  const out = path.join(dir, 'out.mp4');
  const run = await runCli(['render', '--seconds', '1', '--out', out, '--set', 'engine.dtype=fp8'], {});
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /engine\.dtype/);
  assert.not.ok(fs.existsSync(out), 'nothing written');
});

test.run();
