/**
 * A block's denoising steps looped by the engine (`engine.denoiseIn: engine`, Engine.denoiseSteps), on the stand-in
 * addon whose flows depend on the forward's inputs: every block's denoised latent is, to the bit, the one of the
 * generator's own step-by-step loop (re-noise and ODE samplers, flow and sample prediction); blocks with guidance take
 * one call a step; the engine refuses requests of the wrong size. (The real addon's loop against its own forwards:
 * test/engine/native.test.ts.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { createGenerator } from '../../src/loop/generator.js';
import { modelDims } from '../../src/model/dims.js';
import type { Engine, ForwardRequest } from '../../src/engine/types.js';
import { SinkstreamError } from '../../src/errors.js';
import { tempDir } from '../encode/helpers.js';
import { standInCalls, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';

const addon = writeStandInAddon(tempDir('native-denoise-steps'), { gpus: ['Stand-in H200'], attention: 'stand-in', timeline: true, inputFlows: true });
const base = ['engine.name=native', 'engine.dtype=float16', 'model.weights=synthetic', 'generation.opening=noise', 'generation.openingGuidance=null', 'generation.openingSteps=null', 'generation.steps=[1000,750,500,250]', 'decoder.kind=none', 'generation.seed=5', 'engine.warmup=false'];
const BLOCKS = 4;

/** The engine with its clean passes' latents (each block's x0) recorded; everything else passed through. */
function recordingX0(engine: Engine, x0s: Float32Array[]): Engine {
  return new Proxy(engine, {
    get(target, prop) {
      if (prop === 'forward') {
        return (r: ForwardRequest) => {
          if (r.keepBlockKv) x0s.push(r.latent.slice());
          return target.forward(r);
        };
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function run(set: string[]): Promise<{ x0s: Float32Array[]; calls: string[] }> {
  return withAddonFile(addon.file, async () => {
    const config = loadConfig({ set: [...base, ...set] });
    const engine = await createEngine(config);
    const x0s: Float32Array[] = [];
    const calls = standInCalls(addon);
    const before = calls.length;
    const g = await createGenerator(config, { engine: recordingX0(engine, x0s) });
    try {
      for (let b = 0; b < BLOCKS; b++) await g.next();
    } finally {
      await g.close();
      await engine.close();
    }
    await g.close();
    return { x0s, calls: calls.slice(before).map((c) => c.call) };
  });
}

const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

for (const [what, set] of [
  ['re-noise sampler, flow prediction', ['generation.sampler=renoise', 'model.arch.prediction=flow']],
  ['re-noise sampler, sample prediction', ['generation.sampler=renoise', 'model.arch.prediction=sample']],
  ['ODE sampler, flow prediction', ['generation.sampler=ode', 'model.arch.prediction=flow']],
] as const) {
  test(`${what}: the engine's step loop gives the generator's latents to the bit, in one call a block`, async () => {
    const inEngine = await run([...set, 'engine.denoiseIn=engine']);
    const inGenerator = await run([...set, 'engine.denoiseIn=generator']);
    assert.ok(inEngine.x0s.length >= BLOCKS - 1, `clean passes seen: ${inEngine.x0s.length}`);
    assert.is(inEngine.x0s.length, inGenerator.x0s.length);
    inEngine.x0s.forEach((x0, b) => {
      assert.ok(x0.some((v) => v !== 0), `block ${b}: a latent, not zeros`);
      assert.equal(bits(x0), bits(inGenerator.x0s[b]), `block ${b}`);
    });
    const steps = loadConfig({ set: [...base, ...set] }).generation.steps.length;
    assert.is(inEngine.calls.filter((c) => c === 'denoiseSteps').length, BLOCKS, 'one loop call a block');
    assert.is(inEngine.calls.filter((c) => c === 'forward').length, inEngine.x0s.length, 'forwards: the clean passes only');
    assert.is(inGenerator.calls.filter((c) => c === 'denoiseSteps').length, 0);
    assert.is(inGenerator.calls.filter((c) => c === 'forward').length, BLOCKS * steps + inGenerator.x0s.length);
  });
}

test('a guided block (the opening) takes one call a step; the unguided blocks after it one call', async () => {
  const set = ['generation.openingGuidance=3', 'model.arch.prediction=flow'];
  const inEngine = await run([...set, 'engine.denoiseIn=engine']);
  const inGenerator = await run([...set, 'engine.denoiseIn=generator']);
  assert.is(inEngine.calls.filter((c) => c === 'denoiseSteps').length, BLOCKS - 1);
  inEngine.x0s.forEach((x0, b) => assert.equal(bits(x0), bits(inGenerator.x0s[b]), `block ${b}`));
});

test('denoiseSteps refuses a latent, x0 or noises of the wrong size (ERR_ENGINE), before the addon', () =>
  withAddonFile(addon.file, async () => {
    const config = loadConfig({ set: base });
    const dims = modelDims(config);
    const F = config.generation.blockFrames;
    const size = dims.latentChannels * F * dims.latentHeight * dims.latentWidth;
    const engine = await createEngine(config);
    try {
      const ok = { latent: new Float32Array(size), framePositions: Int32Array.from([0, 1, 2]), sigmas: [1, 0.5], samplePrediction: false, sigmaFloor: 0.05, x0Into: new Float32Array(size) };
      const calls = standInCalls(addon);
      const before = calls.length;
      for (const bad of [{ latent: new Float32Array(size - 1) }, { x0Into: new Float32Array(size + 1) }, { noises: new Float32Array(2 * size) }, { sigmas: [] }]) {
        const error = await engine.denoiseSteps!({ ...ok, ...bad }).then(() => null, (e: unknown) => e);
        assert.instance(error, SinkstreamError, JSON.stringify(Object.keys(bad)));
        assert.is((error as SinkstreamError).code, 'ERR_ENGINE');
      }
      assert.is(calls.length, before, 'nothing reached the addon');
      await engine.denoiseSteps!({ ...ok, noises: new Float32Array(size) });
      assert.ok(ok.x0Into.some((v) => v !== 0), 'a right-sized request runs');
    } finally {
      await engine.close();
    }
  }),
);

test.run();
