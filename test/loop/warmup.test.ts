/**
 * engine.warmup: the cache sizes played on the host are the ones a real stream's forwards attend (every
 * preset, compression included); the warm-up runs one forward at each, empties the cache, warms and
 * resets the decoder, and leaves the stream's frames unchanged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { loadConfig, defaultConfigPath } from '../../src/config/load.js';
import { createGenerator, warmupEnabled } from '../../src/loop/generator.js';
import { streamCacheSizes } from '../../src/loop/warmup.js';
import { modelDims } from '../../src/model/dims.js';
import type { Engine } from '../../src/engine/types.js';
import type { Decoder } from '../../src/decode/decoder.js';
import { SpaceToDepthDecoder } from '../../src/decode/space-to-depth.js';
import type { Config } from '../../src/config/schema.js';
import { rowCountingEngine } from './helpers/row-counting-engine.js';

const presets = path.join(path.dirname(defaultConfigPath), 'presets');
const tiny = ['model.weights=synthetic', 'model.arch.layers=2', 'engine.threads=1', 'generation.opening=noise', 'generation.steps=[1000,500]'];

interface Call {
  kind: 'forward' | 'update' | 'reset';
  cacheRows: number;
  keep?: boolean;
}

/** Records each call with the cache rows it saw; keeps `scores` of the right size for compression. */
function recordingEngine(calls: Call[], layers: number): Engine {
  return rowCountingEngine({
    name: 'recording',
    onForward: (r, rows) => void calls.push({ kind: 'forward', cacheRows: rows, keep: r.keepBlockKv }),
    flow: (r, rows) => {
      const flow = new Float32Array(r.latent.length);
      for (let i = 0; i < flow.length; i++) flow[i] = 0.3 * r.latent[i] + 0.001 * rows;
      return flow;
    },
    queriesId: (r) => (r.keepQueries === 'none' ? undefined : calls.length),
    onUpdate: (u, { rows, pending }) => {
      const available = rows + pending;
      for (const s of u.sources) if (s < 0 || s >= Math.max(available, 1)) throw new Error(`source ${s} outside ${available} rows`);
      calls.push({ kind: 'update', cacheRows: u.rows });
    },
    onReset: () => void calls.push({ kind: 'reset', cacheRows: 0 }),
    scores: (rows) => new Float32Array(layers * rows),
  });
}

function countingDecoder(config: Config, log: string[]): Decoder {
  const inner = new SpaceToDepthDecoder(config.decoder.factor, config.model.latentHeight, config.model.latentWidth);
  return {
    kind: 'space-to-depth',
    width: inner.width,
    height: inner.height,
    backend: inner.backend,
    framesPerLatentFrame: 1,
    framesForFirstLatentFrame: 1,
    async decode(latent) {
      log.push('decode');
      return inner.decode(latent);
    },
    async reset() {
      log.push('reset');
    },
    async close() {},
  };
}

test('the cache sizes played on the host are those a stream attends, for every preset', async () => {
  for (const preset of ['self-forcing-window', 'longlive-sink', 'streamingllm-sink', 'reward-forcing-ema-sink', 'deep-forcing']) {
    const config = loadConfig({ file: path.join(presets, `${preset}.yaml`), set: [...tiny, 'engine.warmup=false'] });
    const dims = modelDims(config);
    const sizes = streamCacheSizes(config, dims);
    const calls: Call[] = [];
    const g = await createGenerator(config, { engine: recordingEngine(calls, dims.layers) });
    const blocks = Math.ceil((config.cache.window * 3) / config.generation.blockFrames) + 4;
    for (let b = 0; b < blocks; b++) await g.next();
    await g.close();
    const seen = [...new Set(calls.filter((c) => c.kind === 'forward').map((c) => c.cacheRows))].sort((a, b) => a - b);
    assert.equal(sizes, seen, `${preset}: sizes`);
    assert.ok(sizes.length >= 2, `${preset}: the cache grows`);
  }
});

test('the warm-up: one forward per size, an empty cache after, the decoder reset; the stream is unchanged', async () => {
  const config = loadConfig({ file: path.join(presets, 'longlive-sink.yaml'), set: [...tiny, 'engine.warmup=true'] });
  const dims = modelDims(config);
  const sizes = streamCacheSizes(config, dims);
  const calls: Call[] = [];
  const decoderLog: string[] = [];
  const g = await createGenerator(config, { engine: recordingEngine(calls, dims.layers), decoder: countingDecoder(config, decoderLog) });
  const warm = calls.splice(0);
  assert.equal(warm.filter((c) => c.kind === 'forward').map((c) => c.cacheRows), sizes, 'one forward at each size, ascending');
  assert.is(warm[warm.length - 1].kind, 'reset', 'the cache is emptied after');
  assert.equal(decoderLog.splice(0), ['decode', 'decode', 'reset'], 'first and later block decoded, then forgotten');
  assert.ok(g.startup.warmup !== null);
  assert.equal(g.startup.warmup!.cacheRows, sizes);
  assert.is(g.startup.warmup!.forwards, sizes.filter((s) => s > 0).length + 1);
  assert.ok(g.startup.warmupMs >= 0 && g.startup.engineMs === 0, 'the engine was passed in: no engine start here');
  const warmed = [await g.next(), await g.next(), await g.next()];
  await g.close();
  assert.is(calls[0].cacheRows, 0, 'the first block attends an empty cache');

  const cold = await createGenerator({ ...config, engine: { ...config.engine, warmup: false } }, { engine: recordingEngine([], dims.layers), decoder: countingDecoder(config, []) });
  assert.is(cold.startup.warmup, null);
  assert.is(cold.startup.warmupMs, 0);
  for (const w of warmed) {
    const c = await cold.next();
    assert.equal(w.frames, c.frames, `block ${w.index}: the same frames with and without the warm-up`);
  }
  await cold.close();
});

test('engine.warmup defaults to on for the native engine only', () => {
  const base = loadConfig({ set: tiny });
  assert.is(warmupEnabled({ engine: { ...base.engine, name: 'native' } }), true);
  assert.is(warmupEnabled({ engine: { ...base.engine, name: 'ort' } }), false);
  assert.is(warmupEnabled({ engine: { ...base.engine, name: 'native', warmup: false } }), false);
  assert.is(warmupEnabled({ engine: { ...base.engine, name: 'ort', warmup: true } }), true);
});

test.run();
