/**
 * A setup that batches (a native engine on one GPU, engine.maxBatch >= 2) is calibrated batched too: forwards of two
 * streams joined into one call are timed beside one stream's (so the fit can tell a forward's cost per call from its
 * cost per stream), at the cache lengths after the first block; maxBatch 1 or an engine that cannot batch time one
 * stream only. On the stand-in native addon (what is timed, not how long it takes).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig, patchConfig } from '../../src/config/load.js';
import { batchedStreams, calibrationKey, measureCalibration } from '../../src/realtime/engine-calibration.js';
import { modelDims } from '../../src/model/dims.js';
import { withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';
import { tempDir } from '../encode/helpers.js';

const addon = writeStandInAddon(tempDir('batched-calibration'), { gpus: ['Stand-in H200'], attention: 'stand-in' });

function nativeConfig(maxBatch: number, stages = 1) {
  return patchConfig(loadConfig(), [{ engine: { name: 'native', dtype: 'float16', warmup: false, maxBatch, stages } }], 'test');
}

const withAddon = <T>(run: () => Promise<T>): Promise<T> => withAddonFile(addon.file, run);

test('which setups batch: a native engine on one GPU with maxBatch >= 2; not ONNX Runtime, not a pipeline over GPUs', () => {
  assert.is(batchedStreams(nativeConfig(4)), 4);
  assert.is(batchedStreams(nativeConfig(1)), 1);
  assert.is(batchedStreams(nativeConfig(4, 2)), 1);
  assert.is(batchedStreams(patchConfig(loadConfig(), [{ engine: { maxBatch: 4 } }], 'test')), 1);
  assert.is.not(calibrationKey(nativeConfig(4)), calibrationKey(nativeConfig(1)), 'timed batched: its own calibration');
  assert.is(calibrationKey(nativeConfig(1)), calibrationKey(nativeConfig(1)));
});

test('maxBatch 2: batch-2 samples beside the single stream\'s, at the cache lengths after the first block; maxBatch 1: none', async () => {
  const batchedRun = await withAddon(() => measureCalibration(nativeConfig(2)));
  const tpf = modelDims(nativeConfig(2)).tokensPerFrame;
  const F = nativeConfig(2).generation.blockFrames;
  const two = batchedRun.samples.forward.filter((s) => s.batch === 2);
  const one = batchedRun.samples.forward.filter((s) => s.batch === 1);
  assert.ok(one.length > 0);
  assert.ok(two.length > 0, JSON.stringify(batchedRun.samples.forward));
  assert.ok(two.every((s) => s.queryTokens === F * tpf && s.cachedTokens > 0), 'the first block (empty cache) left out');
  assert.ok(Object.values(batchedRun.costModel.coefficients(batchedRun.device)).every((v) => Number.isFinite(v) && v >= 0));
  const alone = await withAddon(() => measureCalibration(nativeConfig(1)));
  assert.ok(alone.samples.forward.every((s) => s.batch === 1));
});

test.run();
