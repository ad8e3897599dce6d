/**
 * engine.attention: fp8 (issue 18 item 4) as the runtime hands it to the addon: the key's checks, the mode each
 * native engine receives (single GPU and pipeline), what the engine reports as its attention, and the CLI's exit
 * status for a configuration that cannot run it. On the stand-in addon (tools/stand-in/native-addon.ts); the FP8
 * arithmetic itself is measured on the GPU (native/NOTES.md).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { standInEngines, standInModes, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { tempDir } from '../encode/helpers.js';
import { runCli } from '../helpers/cli.js';

test('engine.attention: exact by default; fp8 only for the native engine at float16 or fp8', () => {
  assert.is(loadConfig({}).engine.attention, 'exact');
  const ok = loadConfig({ overrides: { engine: { name: 'native', dtype: 'float16', attention: 'fp8' } } });
  assert.is(ok.engine.attention, 'fp8');
  assert.throws(() => loadConfig({ overrides: { engine: { attention: 'fp8' } } }), /engine\.attention.*needs engine\.name 'native' and engine\.dtype 'float16' or 'fp8' \(they are 'ort' and 'float32'\)/);
  assert.throws(() => loadConfig({ overrides: { engine: { name: 'native', attention: 'fp8' } } }), /engine\.attention.*'native' and 'float32'/);
  assert.throws(() => loadConfig({ overrides: { engine: { name: 'native', dtype: 'float16', attention: 'int4' } } }), /engine\.attention/);
});

test('the native engine sets FP8 attention on the addon only when asked, and reports it', async () => {
  const addon = writeStandInAddon(tempDir('fp8-attention'), { gpus: ['Stand-in H200', 'Stand-in H200'], attention: 'cuDNN 9.14.0 (stand-in)' });
  await withAddonFile(addon.file, async () => {
    const engines: NonNullable<ConfigInput['engine']>[] = [
      { name: 'native', dtype: 'float16' },
      { name: 'native', dtype: 'float16', attention: 'fp8' },
      { name: 'native', dtype: 'float16', attention: 'fp8', stages: 2 },
      { name: 'native', dtype: 'float16', attention: 'fp8' },
    ];
    const reported: string[] = [];
    const batchKeys: Array<string | undefined> = [];
    for (const engine of engines) {
      const e = await createEngine(configSchema.parse({ engine }));
      reported.push(e.info().attention ?? '');
      batchKeys.push(e.batchKey);
      await e.close();
    }
    assert.is(standInEngines(addon).length, 4);
    const modes = standInModes(addon, 'attentionPrecision');
    assert.equal(modes.map((m) => [m.mode, m.devices]), [[1, [0]], [1, [0, 1]], [1, [0]]], 'the exact engine is left at its default');
    // a batched forward runs every stream's attention in one precision: exact and fp8 engines never share a batch
    assert.type(batchKeys[0], 'string');
    assert.is.not(batchKeys[1], batchKeys[0]);
    assert.is(batchKeys[3], batchKeys[1]);
    assert.is(reported[0], 'cuDNN 9.14.0 (stand-in)');
    assert.is(reported[1], 'fp8 (E4M3), cuDNN 9.14.0 (stand-in)');
  });
});

test('an addon that refuses FP8 attention fails the engine with its reason (the fp32 path here)', async () => {
  const addon = writeStandInAddon(tempDir('fp8-attention-refused'), { gpus: ['Stand-in H200'], attention: 'stand-in' });
  await withAddonFile(addon.file, async () => {
    // configSchema.parse skips the configuration's cross-key checks, so the addon's own refusal is what answers
    const config = configSchema.parse({ engine: { name: 'native', dtype: 'float32', attention: 'fp8' } });
    let error: (Error & { code?: string }) | undefined;
    await createEngine(config).then(
      (e) => e.close(),
      (e: Error) => (error = e),
    );
    assert.match(error?.message ?? '', /engine\.attention 'fp8': FP8 attention needs the native engine's bf16 path/);
    assert.is(error?.code, 'ERR_ENGINE_UNAVAILABLE', 'a configuration the machine cannot run: exit status 2');
  });
});

test('sinkstream render with engine.attention=fp8 on the ORT engine: exit 2, the key named, nothing written', async () => {
  const dir = tempDir('fp8-attention-cli');
  const out = path.join(dir, 'out.mp4');
  const run = await runCli(['render', '--seconds', '1', '--out', out, '--set', 'engine.attention=fp8'], {});
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /engine\.attention/);
  assert.not.ok(fs.existsSync(out), 'nothing written');
});

test.run();
