/**
 * `bench --json` and `render --json` report what really ran: the engine's own description (its GPUs, its
 * precision, the attention backend it chose) and the decoder's runtime, not the config's keys. The native
 * engine runs on a stand-in addon (tools/stand-in/native-addon.ts) that names its own GPU and
 * attention backend, so a report built from the config (`native/webgpu`) fails these tests.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { ADDON_ENV } from '../../src/engine/native/addon-loader.js';
import { NativeTaehvDecoder } from '../../src/decode/native-taehv.js';
import { SpaceToDepthDecoder } from '../../src/decode/space-to-depth.js';
import { describeDecoderBackend } from '../../src/decode/decoder.js';
import type { NativeAddon, NativeTaehvHandle } from '../../src/engine/native/addon-types.js';
import { ranOn } from '../../src/cli/ran-on.js';
import { tempDir } from '../encode/helpers.js';
import { withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { runCli } from '../helpers/cli.js';

const ATTENTION = 'cuDNN 9.99.0 (stand-in)';
const GPU = 'Stand-in H200';

const cli = (args: string[], env: NodeJS.ProcessEnv) => runCli(args, { env });

test('the native engine describes itself: GPU, bf16 and the attention backend the addon chose; fp32 runs its own kernel', async () => {
  const addon = writeStandInAddon(tempDir('ran-on'), { gpus: [GPU], attention: ATTENTION });
  await withAddonFile(addon.file, async () => {
    const bf16 = await createEngine(configSchema.parse({ engine: { name: 'native', provider: 'webgpu', dtype: 'float16' } }));
    const info = bf16.info();
    await bf16.close();
    assert.is(info.precision, 'bf16');
    assert.is(info.attention, ATTENTION);
    const ran = ranOn(info, null);
    assert.is(ran.engine, `native/cuda:0 (${GPU}), bf16, attention: ${ATTENTION}`);
    assert.is(ran.attention, ATTENTION);
    assert.is(ran.enginePrecision, 'bf16');
    assert.not.match(ran.engine, /webgpu/);

    const fp32 = await createEngine(configSchema.parse({ engine: { name: 'native', provider: 'webgpu', dtype: 'float32' } }));
    const info32 = fp32.info();
    await fp32.close();
    assert.is(info32.precision, 'fp32');
    assert.is(info32.attention, 'own kernel (fp32)');
  });
});

test('decoders say where they run: the native TAEHV on its GPU and precision, space-to-depth on the host', async () => {
  const addon = {
    createTaehv: () => ({}) as NativeTaehvHandle,
    taehvSetWeight() {},
    taehvFinalize: async () => 0,
    taehvInfo: () => ({ width: 64, height: 48 }),
    taehvDestroy() {},
  } as unknown as NativeAddon;
  const shape = { latentChannels: 16, channels: [8, 8, 8, 8], latentHeight: 6, latentWidth: 8 };
  const native = await NativeTaehvDecoder.open({ addon, shape, weights: new Map(), device: 3, precision: 2, warmupFrames: 0 } as unknown as Parameters<typeof NativeTaehvDecoder.open>[0]);
  assert.equal(native.backend, { runtime: 'native', precision: 'fp16', device: 3 });
  assert.is(describeDecoderBackend(native.backend), 'native cuda:3 fp16');
  await native.close();
  assert.equal(new SpaceToDepthDecoder(2, 4, 4).backend, { runtime: 'cpu', precision: 'fp32' });
});

test('bench --json under the native engine: engine, precision and attention come from the engine, not from engine.provider', async () => {
  const addon = writeStandInAddon(tempDir('ran-on-bench'), { gpus: [GPU], attention: ATTENTION });
  const run = await cli(['bench', '--blocks', '3', '--json', '--no-encode', '--set', 'engine.name=native', '--set', 'engine.provider=webgpu', '--set', 'engine.dtype=float16'], {
    [ADDON_ENV]: addon.file,
  });
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim());
  assert.is(report.engine, `native/cuda:0 (${GPU}), bf16, attention: ${ATTENTION}`);
  assert.is(report.attention, ATTENTION);
  assert.is(report.enginePrecision, 'bf16');
  assert.equal(report.decoderRuntime, { runtime: 'cpu', precision: 'fp32' });
  assert.type(report.firstBlockMs, 'number');
  assert.ok(Math.abs(report.firstVsSteady - (report.firstBlockMs / report.msPerBlock - 1)) < 1e-9);
});

test('bench --json under ONNX Runtime CPU: the provider and precision it built, the attention op that runs', async () => {
  // engine.dtype float16 is asked for, but the CPU provider always runs fp32: the report says what ran.
  const run = await cli(['bench', '--blocks', '2', '--json', '--no-encode', '--set', 'engine.dtype=float16'], {});
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim());
  assert.is(report.engine, 'ort/cpu');
  assert.is(report.enginePrecision, 'fp32');
  assert.is(report.attention, 'ONNX Runtime cpu MultiHeadAttention');
  assert.equal(report.decoderRuntime, { runtime: 'cpu', precision: 'fp32' });
});

test('render --json under the native engine names the engine that ran', async () => {
  const dir = tempDir('ran-on-render');
  const addon = writeStandInAddon(dir, { gpus: [GPU], attention: ATTENTION });
  const out = path.join(dir, 'out.mp4');
  const run = await cli(['render', '--frames', '6', '--out', out, '--json', '--set', 'engine.name=native', '--set', 'engine.provider=webgpu', '--set', 'engine.dtype=float16'], {
    [ADDON_ENV]: addon.file,
  });
  assert.is(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout.trim());
  assert.is(summary.engine, `native/cuda:0 (${GPU}), bf16, attention: ${ATTENTION}`);
  assert.is(summary.attention, ATTENTION);
  assert.equal(summary.decoderRuntime, { runtime: 'cpu', precision: 'fp32' });
});

test.run();
