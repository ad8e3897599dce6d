/**
 * The cost model measured on the real engine (the default demo model on the CPU): samples at every
 * cache length from empty to full, coefficients that order the rungs, a prediction in the range of
 * what the generator then measures, and one measurement per engine setup per process.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { modelDims } from '../../src/model/dims.js';
import { median } from '../../src/util/stats.js';
import { calibrationFor, calibrationKey, deviceIdFor } from '../../src/realtime/engine-calibration.js';
import { TimingEngine } from '../../src/realtime/timing-engine.js';
import type { Engine } from '../../src/engine/types.js';

const config = loadConfig({});

test('the timing engine records each forward with its query and cached tokens', async () => {
  let rows = 0;
  const inner = {
    name: 'fake',
    info: () => ({ name: 'fake', provider: 'cpu', cacheRows: rows, pendingRows: 0 }),
    forward: async () => ({ flow: new Float32Array(1) }),
  } as unknown as Engine;
  const timing = new TimingEngine(inner, 64);
  await timing.forward({ latent: new Float32Array(1), timesteps: new Float32Array(3), framePositions: new Int32Array(3), keepBlockKv: false, keepQueries: 'none' });
  rows = 192;
  await timing.forward({ latent: new Float32Array(1), timesteps: new Float32Array(1), framePositions: new Int32Array(1), keepBlockKv: true, keepQueries: 'none' });
  assert.equal(timing.forwards.map((f) => [f.queryTokens, f.cachedTokens]), [[192, 0], [64, 192]]);
  assert.ok(timing.forwards.every((f) => f.ms >= 0));
});

test('measured on the real engine: every cache length sampled, the rungs ordered, close to what blocks then take', async () => {
  const c = await calibrationFor(config);
  const tpf = modelDims(config).tokensPerFrame;
  const F = config.generation.blockFrames;
  assert.is(c.device, deviceIdFor(config));
  assert.is(c.device, 'ort-cpu');
  const cached = c.samples.forward.map((s) => s.cachedTokens / tpf).sort((a, b) => a - b);
  assert.equal(cached, [0, 3, 6, 9], 'from an empty cache to a full window (12 - 3 frames)');
  assert.ok(c.samples.forward.every((s) => s.queryTokens === F * tpf && s.ms > 0));
  const coefficients = c.costModel.coefficients(c.device);
  assert.ok(Object.values(coefficients).every((v) => v >= 0), JSON.stringify(coefficients));
  const shape = { queryTokens: F * tpf, cachedTokens: 9 * tpf, latentFrames: F };
  const at = (steps: number) => c.costModel.blockMs(c.device, { ...shape, steps });
  assert.ok(at(4) > at(3) && at(3) > at(2) && at(2) > 0, `${at(4)} ${at(3)} ${at(2)}`);

  // Blocks with a full cache, measured now, against the prediction (a shared machine: a wide band).
  const generator = await createGenerator(config);
  const times: number[] = [];
  for (let i = 0; i < 6; i++) times.push((await generator.next()).timings.totalMs);
  await generator.close();
  const ratio = median(times.slice(4)) / at(4);
  assert.ok(ratio > 0.25 && ratio < 4, `measured ${median(times.slice(4)).toFixed(0)} ms, predicted ${at(4).toFixed(0)} ms`);
});

test('one measurement per engine setup and process', async () => {
  assert.is(calibrationFor(config), calibrationFor(loadConfig({ overrides: { generation: { prompt: 'a blue square' }, cache: { sink: 2 } } })));
  const other = loadConfig({ overrides: { engine: { threads: 1 } } });
  assert.is.not(calibrationKey(other), calibrationKey(config));
  // engine.maxBatch batches several streams; a stream's own timings (and the keys calibrations were stored under) do not change
  assert.is(calibrationKey(loadConfig({ overrides: { engine: { maxBatch: 4 } } })), calibrationKey(config));
  assert.not.match(calibrationKey(config), /maxBatch/);
});

test.run();
