/**
 * The native engine's side of the host's turn between forwards (issue 18 item 1), on the stand-in addon: a forward
 * asked for while the engine is idle is with the addon when forward() returns (the caller's next lines, the next
 * step's noise, run while it works), and the flow is written into the caller's `flowInto` array when it is the
 * flow's size.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { modelDims } from '../../src/model/dims.js';
import type { Engine, ForwardRequest } from '../../src/engine/types.js';
import { tempDir } from '../encode/helpers.js';
import { standInCalls, withAddonFile, writeStandInAddon } from '../../tools/stand-in/native-addon.js';

const addon = writeStandInAddon(tempDir('native-host-path'), { gpus: ['Stand-in H200'], attention: 'stand-in', timeline: true });
const config = configSchema.parse({ engine: { name: 'native', dtype: 'float16' } });
const dims = modelDims(config);
const F = config.generation.blockFrames;
const size = dims.latentChannels * F * dims.latentHeight * dims.latentWidth;

function request(extra: Partial<ForwardRequest> = {}): ForwardRequest {
  return {
    latent: new Float32Array(size).fill(0.5),
    timesteps: new Float32Array(F).fill(1000),
    framePositions: Int32Array.from({ length: F }, (_, f) => f),
    keepBlockKv: false,
    keepQueries: 'none',
    ...extra,
  };
}

async function withEngine(body: (engine: Engine) => Promise<void>): Promise<void> {
  await withAddonFile(addon.file, async () => {
    const engine = await createEngine(config);
    try {
      await body(engine);
    } finally {
      await engine.close();
    }
  });
}

test('a forward asked for while the engine is idle reaches the addon before forward() returns; one asked for meanwhile waits', () =>
  withEngine(async (engine) => {
    const calls = standInCalls(addon);
    const before = calls.length;
    const first = engine.forward(request());
    assert.is(calls.length, before + 1, 'with the addon already');
    const second = engine.forward(request());
    assert.is(calls.length, before + 1, 'the second waits for the first');
    await first;
    await second;
    assert.is(calls.length, before + 2);
    assert.ok(calls[before + 1].calledAt >= calls[before].settledAt, 'one call at a time');
  }),
);

test('the flow is written into flowInto when it has the flow\'s size; otherwise into a new array', () =>
  withEngine(async (engine) => {
    const into = new Float32Array(size).fill(Number.NaN);
    const r = await engine.forward(request({ flowInto: into }));
    assert.is(r.flow, into, 'the caller\'s array');
    assert.ok(into.every((v) => v === 0), 'written (the stand-in\'s flow is zeros)');
    const small = new Float32Array(size - 1);
    const other = await engine.forward(request({ flowInto: small }));
    assert.is.not(other.flow, small);
    assert.is(other.flow.length, size);
    assert.is.not((await engine.forward(request())).flow, into, 'none offered: a new one');
  }),
);

test.run();
