/** The autoregressive loop on the real ONNX Runtime CPU engine with the tiny default shape. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { loadConfig, defaultConfigPath } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { SinkstreamError } from '../../src/errors.js';
import type { Engine } from '../../src/engine/types.js';
import { gaussianNoise } from '../../src/loop/noise.js';
import { latentToFrames } from '../../src/decode/space-to-depth.js';
import { renderGroundTruth } from '../../src/scene/ground-truth.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';
import { maxByteDifference } from '../helpers/frames.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';
import { tinyLoop } from './helpers/tiny-loop.js';

/** An engine whose flow is a constant: the loop's arithmetic can be checked in closed form. */
function constantFlowEngine(value: number, calls: Array<{ t: number; keep: boolean }>): Engine {
  return rowCountingEngine({
    name: 'constant-flow',
    onForward: (r) => void calls.push({ t: r.timesteps[0], keep: r.keepBlockKv }),
    flow: (r) => new Float32Array(r.latent.length).fill(value),
  });
}

const presets = path.join(path.dirname(defaultConfigPath), 'presets');
// Synthetic weights keep these tests about the loop, whatever model the default config ships.
const tiny = [...tinyLoop, 'model.arch.prediction=flow'];

function sameFrames(a: Uint8Array[], b: Uint8Array[]): boolean {
  return a.length === b.length && a.every((f, i) => Buffer.compare(Buffer.from(f), Buffer.from(b[i])) === 0);
}

test('the same seed gives the same video; another seed another', async () => {
  const run = async (seed: number) => {
    const g = await createGenerator(loadConfig({ set: [...tiny, `generation.seed=${seed}`] }));
    const frames = [...(await g.next()).frames, ...(await g.next()).frames];
    await g.close();
    return frames;
  };
  const a = await run(3);
  const b = await run(3);
  const c = await run(4);
  assert.is(a.length, 6);
  assert.ok(sameFrames(a, b), 'seeded noise: same video');
  assert.not.ok(sameFrames(a, c), 'another seed: another video');
});

test('every preset runs past its window with a bounded cache at the policy positions', async () => {
  for (const preset of ['self-forcing-window', 'longlive-sink', 'streamingllm-sink', 'reward-forcing-ema-sink', 'deep-forcing']) {
    const config = loadConfig({ file: path.join(presets, `${preset}.yaml`), set: tiny });
    const g = await createGenerator(config);
    const T = (config.model.latentHeight / 2) * (config.model.latentWidth / 2);
    const rows: number[] = [];
    let last = await g.next();
    const blocks = Math.ceil((config.cache.window * 2) / config.generation.blockFrames) + 2;
    for (let b = 1; b < blocks; b++) {
      last = await g.next();
      const rowsNow = g.engineInfo().cacheRows;
      rows.push(rowsNow);
      // The block attends to what the cache held plus its own F frames: W at most.
      const attended = last.cache.length + config.generation.blockFrames;
      assert.ok(attended <= config.cache.window, `${preset}: block ${b} attended ${attended} frames, window ${config.cache.window}`);
      assert.is(rowsNow, last.cache.length * T, `${preset}: the engine's cache rows are the frames the block saw`);
    }
    const maxRows = (config.cache.window - config.generation.blockFrames) * T;
    assert.ok(Math.max(...rows) <= maxRows, `${preset}: cache rows ${Math.max(...rows)} <= ${maxRows}`);
    assert.is(rows[rows.length - 1], rows[rows.length - 3], `${preset}: steady-state rows`);
    if (config.cache.policy !== 'window') assert.ok(last.cache.some((h) => h.role === 'sink'), `${preset}: a sink is held`);
    if (preset === 'longlive-sink') {
      assert.equal(last.cache.filter((h) => h.role === 'sink').map((h) => h.position), [0, 1, 2], 'absolute sink positions');
    }
    if (preset === 'deep-forcing') {
      // Deep Sink: the sink sits right before the retained history, next to the block.
      const f0 = last.queryPositions[0];
      const positions = last.cache.filter((h) => !h.ownPositions).map((h) => h.position);
      assert.ok(positions.every((p) => p < f0), 'cache before the block');
      assert.ok(last.cache.some((h) => h.role === 'compressed'), 'participative compression ran');
    }
    await g.close();
  }
});

test('a prompt switch keeps the sink rows and rebuilds the history (KV re-cache), with no restart', async () => {
  const config = loadConfig({ file: path.join(presets, 'longlive-sink.yaml'), set: tiny });
  type WithEngine = { engine: import('../../src/engine/types.js').Engine };
  const switched = await createGenerator(config);
  const steady = await createGenerator(config);
  for (let b = 0; b < 5; b++) {
    await switched.next();
    await steady.next();
  }
  await switched.setPrompt('a yellow triangle bouncing on a dark blue background');
  const a = await switched.next();
  const b = await steady.next();
  assert.is(a.index, 5, 'the stream continues');
  assert.is(a.frames.length, 3);
  assert.not.ok(sameFrames(a.frames, b.frames), 'the new prompt changes the video');
  assert.is(switched.config.generation.prompt, 'a yellow triangle bouncing on a dark blue background');
  const ca = await (switched as unknown as WithEngine).engine.readCache();
  const cb = await (steady as unknown as WithEngine).engine.readCache();
  assert.is(ca.rows, cb.rows);
  const T = (config.model.latentHeight / 2) * (config.model.latentWidth / 2);
  const dim = config.model.arch.dim;
  const sinkValues = config.cache.sink * T * dim;
  // The last layer: layer 0's keys depend on the latent alone, later layers see the prompt.
  const L = config.model.arch.layers;
  const layer0 = (c: typeof ca) => c.keys.subarray((L - 1) * c.rows * dim, L * c.rows * dim);
  assert.equal(Array.from(layer0(ca).subarray(0, sinkValues)), Array.from(layer0(cb).subarray(0, sinkValues)), 'sink rows kept');
  assert.ok(ca.keys.length === cb.keys.length);
  let differ = 0;
  const hist = layer0(ca).subarray(sinkValues);
  const histSteady = layer0(cb).subarray(sinkValues);
  for (let i = 0; i < hist.length; i++) if (Math.abs(hist[i] - histSteady[i]) > 1e-6) differ++;
  assert.ok(differ > hist.length / 2, `history rows rebuilt under the new prompt (${differ}/${hist.length} differ)`);
  assert.equal(ca.positions, cb.positions, 'same positions');
  await switched.close();
  await steady.close();
  try {
    await switched.next();
    assert.unreachable('closed');
  } catch (e) {
    assert.is((e as SinkstreamError).code, 'ERR_CLOSED');
  }
});

test('ode sampler: Euler steps along the flow give x0 = noise - s0 * v in closed form; clean pass at t = 0', async () => {
  const calls: Array<{ t: number; keep: boolean }> = [];
  const config = loadConfig({ set: [...tiny, 'generation.sampler=ode', 'generation.seed=5'] });
  const g = await createGenerator(config, { engine: constantFlowEngine(0.25, calls) });
  const block = await g.next();
  await g.next();
  const C = config.model.arch.latentChannels;
  const size = C * 3 * 16 * 16;
  const noise = gaussianNoise(size, 5, 0, 0);
  const x0 = noise.map((n) => n - 1 * 0.25); // s0 = 1
  const expected = latentToFrames(x0, 4, 16, 16);
  // float32 sums of the Euler steps vs one subtraction: equal up to one byte's rounding
  assert.ok(maxByteDifference(block.frames, expected) <= 1, 'x0 = noise - s0 * v');
  // 4 steps of block 0 at the warped timesteps, then block 1 starts with block 0's clean pass at t = 0.
  assert.equal(calls.slice(0, 5).map((c) => [Math.round(c.t * 10) / 10, c.keep]), [[1000, false], [937.5, false], [833.3, false], [625, false], [0, true]]);
  await g.close();
});

test('renoise sampler: the last step re-noises x0 with fresh seeded noise (Self-Forcing)', async () => {
  const calls: Array<{ t: number; keep: boolean }> = [];
  const config = loadConfig({ set: [...tiny, 'generation.steps=[1000,500]', 'generation.shift=1', 'generation.seed=2'] });
  const g = await createGenerator(config, { engine: constantFlowEngine(0.5, calls) });
  const block = await g.next();
  const size = config.model.arch.latentChannels * 3 * 16 * 16;
  const n0 = gaussianNoise(size, 2, 0, 0);
  const n1 = gaussianNoise(size, 2, 0, 1);
  // step 0 (s = 1): x0 = n0 - 0.5; re-noise to s = 0.5: x = 0.5 x0 + 0.5 n1; step 1: x0 = x - 0.5 * 0.5
  const x0 = n0.map((n, i) => 0.5 * (n - 0.5) + 0.5 * n1[i] - 0.25);
  assert.ok(sameFrames(block.frames, latentToFrames(x0, 4, 16, 16)));
  await g.close();
});

test('generation.opening scene: block 0 is the prompt drawn (no denoising), its clean pass caches it, block 1 is generated', async () => {
  const calls: Array<{ t: number; keep: boolean }> = [];
  const config = loadConfig({ set: [...tiny, 'generation.opening=scene'] });
  const g = await createGenerator(config, { engine: constantFlowEngine(0.25, calls) });
  const first = await g.next();
  assert.is(first.steps, 0);
  assert.equal(calls, [{ t: 0, keep: true }], 'no denoising forward for the drawn block: only its clean pass, started as it is handed out');
  const spec = loadSceneSpec(config.model.scene!);
  const drawn = renderGroundTruth(parsePrompt(config.generation.prompt, spec), spec, 0, 3);
  assert.ok(sameFrames(first.frames, drawn), 'the frames are the prompt scene, exactly');
  const second = await g.next();
  assert.is(second.steps, 4);
  assert.equal(calls.map((c) => [c.t, c.keep]).slice(0, 2), [[0, true], [1000, false]], 'block 0 clean pass, then block 1 denoising');
  assert.not.ok(sameFrames(second.frames, renderGroundTruth(parsePrompt(config.generation.prompt, spec), spec, 3, 3)));
  await g.close();
});

test('generation.opening scene: setPrompt before the first block redraws it; a prompt outside the training grammar is refused', async () => {
  const config = loadConfig({ set: [...tiny, 'generation.opening=scene'] });
  const g = await createGenerator(config, { engine: constantFlowEngine(0, []) });
  const other = 'a yellow triangle bouncing on a black background';
  await g.setPrompt(other);
  const first = await g.next();
  const spec = loadSceneSpec(config.model.scene!);
  assert.ok(sameFrames(first.frames, renderGroundTruth(parsePrompt(other, spec), spec, 0, 3)));
  await g.close();
  for (const [prompt, why] of [
    ['a red circle', /ends where 'bouncing'/],
    ['a red circle, a blue square, a green triangle and a white circle', /names 4 objects; the training scenes have at most 3/],
  ] as const) {
    try {
      await createGenerator(loadConfig({ set: [...tiny, 'generation.opening=scene', `generation.prompt=${prompt}`] }), { engine: constantFlowEngine(0, []) });
      assert.unreachable(`'${prompt}' was accepted`);
    } catch (e) {
      assert.instance(e, SinkstreamError);
      assert.is((e as SinkstreamError).code, 'ERR_PROMPT');
      assert.match((e as Error).message, why);
    }
  }
});

test('a block can be degraded to fewer denoising steps', async () => {
  const g = await createGenerator(loadConfig({ set: tiny }));
  const full = await g.next();
  const two = await g.next({ steps: 2 });
  assert.is(full.steps, 4);
  assert.is(two.steps, 2);
  assert.is(two.frames.length, 3);
  await g.close();
});

test('setPrompt with a word outside the vocabulary is refused at once', async () => {
  const g = await createGenerator(loadConfig({ set: tiny }));
  try {
    await g.setPrompt('a zebra');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, SinkstreamError);
    assert.is((e as SinkstreamError).code, 'ERR_PROMPT');
  }
  await g.close();
});

test('retune changes the window from the next block; an impossible one is refused', async () => {
  const g = await createGenerator(loadConfig({ set: [...tiny, 'cache.policy=sink', 'cache.window=12', 'cache.sink=3'] }));
  for (let b = 0; b < 6; b++) await g.next();
  assert.is((await g.next()).cache.length, 9);
  g.retune({ window: 9 });
  assert.is((await g.next()).cache.length, 6);
  assert.throws(() => g.retune({ window: 4 }), (e: unknown) => (e as SinkstreamError).code === 'ERR_CONFIG_INVALID');
  await g.close();
});

test('retune lays a nested patch over the section as a live stream does: the other participative keys stay', async () => {
  const g = await createGenerator(
    loadConfig({ set: [...tiny, 'cache.policy=deep-sink', 'cache.window=12', 'cache.sink=3', 'cache.compression=participative', 'cache.participative.budget=9', 'cache.participative.recent=5', 'cache.participative.score=max'] }),
  );
  await g.next();
  g.retune({ participative: { budget: 10 } });
  await g.next();
  assert.equal(g.config.cache.participative, { budget: 10, recent: 5, score: 'max', rephase: false });
  await g.close();
});

test('a block whose latent comes out non-finite (a diverged model) fails with ERR_ENGINE instead of a black video', async () => {
  const config = loadConfig({ set: [...tiny, 'generation.seed=2'] });
  for (const value of [NaN, Infinity]) {
    const g = await createGenerator(config, { engine: constantFlowEngine(value, []) });
    let error: unknown;
    await g.next().catch((e: unknown) => (error = e));
    assert.instance(error, SinkstreamError, `flow ${value}: the block was returned`);
    assert.is((error as SinkstreamError).code, 'ERR_ENGINE');
    assert.match((error as SinkstreamError).message, /block 0: the denoised latent holds (NaN|-?Infinity)/);
    await g.close();
  }
  // A finite flow, however large, is not refused.
  const ok = await createGenerator(config, { engine: constantFlowEngine(1e30, []) });
  assert.is((await ok.next()).index, 0);
  await ok.close();
});

test.run();
