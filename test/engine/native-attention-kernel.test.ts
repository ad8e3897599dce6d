/**
 * engine.attentionKernel (issue 18 item 4: the own Hopper attention kernel) as the runtime hands it to the addon: the
 * key's checks, the mode each native engine receives, what the engine reports as its attention, the batch key, and the
 * CLI's exit status for a configuration that cannot run it. On the stand-in addon (tools/stand-in/native-addon.ts);
 * the kernel itself is checked on the GPU (test/engine/native.test.ts) and measured in native/NOTES.md.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { standInModes, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { tempDir } from '../encode/helpers.js';
import { runCli } from '../helpers/cli.js';

test('engine.attentionKernel: auto by default; cudnn and hopper only for the native engine at float16 or fp8', () => {
  assert.is(loadConfig({}).engine.attentionKernel, 'auto');
  for (const kernel of ['cudnn', 'hopper'] as const) {
    assert.is(loadConfig({ overrides: { engine: { name: 'native', dtype: 'float16', attentionKernel: kernel } } }).engine.attentionKernel, kernel);
    assert.is(loadConfig({ overrides: { engine: { name: 'native', dtype: 'fp8', attentionKernel: kernel } } }).engine.attentionKernel, kernel);
    assert.throws(() => loadConfig({ overrides: { engine: { attentionKernel: kernel } } }), /engine\.attentionKernel.*needs engine\.name 'native' and engine\.dtype 'float16' or 'fp8' \(they are 'ort' and 'float32'\)/);
    assert.throws(() => loadConfig({ overrides: { engine: { name: 'native', attentionKernel: kernel } } }), /engine\.attentionKernel.*'native' and 'float32'/);
  }
  assert.throws(() => loadConfig({ overrides: { engine: { name: 'native', dtype: 'float16', attentionKernel: 'flash' } } }), /engine\.attentionKernel/);
});

/** Creates and closes an engine for each configuration; returns what each reported as its attention and its batch key. */
async function engines(list: NonNullable<ConfigInput['engine']>[]): Promise<Array<{ attention: string; batchKey?: string }>> {
  const out: Array<{ attention: string; batchKey?: string }> = [];
  for (const engine of list) {
    const e = await createEngine(configSchema.parse({ engine }));
    out.push({ attention: e.info().attention ?? '', batchKey: e.batchKey });
    await e.close();
  }
  return out;
}

test('on a Hopper GPU auto reports the own kernel for exact attention without a call; cudnn and hopper are set on the addon', async () => {
  const addon = writeStandInAddon(tempDir('attention-kernel'), { gpus: ['Stand-in H200', 'Stand-in H200'], attention: 'cuDNN 9.14.0 (stand-in)', hopper: true });
  await withAddonFile(addon.file, async () => {
    const got = await engines([
      { name: 'native', dtype: 'float16' },
      { name: 'native', dtype: 'float16', attentionKernel: 'cudnn' },
      { name: 'native', dtype: 'float16', attentionKernel: 'hopper', stages: 2 },
      { name: 'native', dtype: 'float16', attentionKernel: 'hopper' },
      { name: 'native', dtype: 'float16', attention: 'fp8' },
      { name: 'native', dtype: 'float16', attention: 'fp8', attentionKernel: 'hopper' },
    ]);
    assert.equal(standInModes(addon, 'attentionKernel').map((m) => [m.mode, m.devices]), [[1, [0]], [2, [0, 1]], [2, [0]], [2, [0]]], 'auto is the addon\'s default: not set');
    assert.is(got[0].attention, 'own Hopper kernel (wgmma + TMA), bf16');
    assert.is(got[1].attention, 'cuDNN 9.14.0 (stand-in)');
    assert.is(got[2].attention, 'own Hopper kernel (wgmma + TMA), bf16');
    assert.is(got[4].attention, 'fp8 (E4M3), cuDNN 9.14.0 (stand-in)', 'auto: FP8 attention on cuDNN\'s');
    assert.is(got[5].attention, 'fp8 (E4M3), own Hopper kernel (wgmma + TMA)', 'hopper: FP8 attention on the own kernel');
    // a batched forward runs every stream's attention on the first engine's kernel: cuDNN and Hopper engines never share one
    assert.type(got[0].batchKey, 'string');
    assert.is.not(got[1].batchKey, got[0].batchKey);
    assert.is(got[3].batchKey, got[0].batchKey);
  });
});

test('where the GPU cannot run it: auto reports cuDNN, hopper fails the engine with exit status 2\'s code', async () => {
  const addon = writeStandInAddon(tempDir('attention-kernel-refused'), { gpus: ['Stand-in A100'], attention: 'cuDNN 9.14.0 (stand-in)' });
  await withAddonFile(addon.file, async () => {
    const [auto] = await engines([{ name: 'native', dtype: 'float16' }]);
    assert.is(auto.attention, 'cuDNN 9.14.0 (stand-in)');
    let error: (Error & { code?: string }) | undefined;
    await createEngine(configSchema.parse({ engine: { name: 'native', dtype: 'float16', attentionKernel: 'hopper' } })).then(
      (e) => e.close(),
      (e: Error) => (error = e),
    );
    assert.match(error?.message ?? '', /engine\.attentionKernel 'hopper': the Hopper attention kernel needs a Hopper GPU/);
    assert.is(error?.code, 'ERR_ENGINE_UNAVAILABLE');
  });
});

test('sinkstream render with engine.attentionKernel=hopper on the ORT engine: exit 2, the key named, nothing written', async () => {
  const dir = tempDir('attention-kernel-cli');
  const out = path.join(dir, 'out.mp4');
  const run = await runCli(['render', '--seconds', '1', '--out', out, '--set', 'engine.attentionKernel=hopper'], {});
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /engine\.attentionKernel/);
  assert.not.ok(fs.existsSync(out), 'nothing written');
});

test.run();
