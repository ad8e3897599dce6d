import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { cacheCapacityFrames, createCachePolicy, createStreamCache, retuneStreamCache } from '../../src/cache/create-policy.js';
import { ParticipativePolicy } from '../../src/cache/participative.js';
import { SinkPolicy } from '../../src/cache/policies/sink.js';
import { DeepSinkPolicy } from '../../src/cache/policies/deep-sink.js';
import { EmaSinkPolicy } from '../../src/cache/policies/ema-sink.js';
import { WindowPolicy } from '../../src/cache/policies/window.js';

const config = (input: ConfigInput) => configSchema.parse(input);

test('each policy from the config, with its keys', () => {
  const sink = createCachePolicy(config({ cache: { policy: 'sink', window: 10, sink: 2, positions: 'cache' } }));
  assert.instance(sink, SinkPolicy);
  assert.equal([(sink as SinkPolicy).window, (sink as SinkPolicy).sink, (sink as SinkPolicy).positions], [10, 2, 'cache']);
  const deep = createCachePolicy(config({ model: { arch: { ropeMaxPosition: 500 } }, cache: { policy: 'deep-sink', window: 21, sink: 10 } })) as DeepSinkPolicy;
  assert.instance(deep, DeepSinkPolicy);
  assert.equal([deep.window, deep.sink, deep.ropeMaxPosition], [21, 10, 500]);
  const ema = createCachePolicy(config({ cache: { policy: 'ema-sink', window: 9, sink: 3, emaAlpha: 0.9 } })) as EmaSinkPolicy;
  assert.equal([ema.window, ema.sink, ema.alpha], [9, 3, 0.9]);
  assert.instance(createCachePolicy(config({ cache: { policy: 'window' } })), WindowPolicy);
});

test('participative compression wraps the base policy, sized from the model', () => {
  assert.not.instance(createCachePolicy(config({})), ParticipativePolicy);
  const c = createCachePolicy(
    config({ cache: { policy: 'deep-sink', window: 21, sink: 10, compression: 'participative', participative: { budget: 16, recent: 4, score: 'max' } } }),
  ) as ParticipativePolicy;
  assert.instance(c, ParticipativePolicy);
  assert.instance(c.base, DeepSinkPolicy);
  assert.is(c.name, 'deep-sink+participative');
  assert.equal([c.topFrames, c.reduce, c.ownPositions, c.options.window, c.options.tokensPerFrame, c.options.layers], [2, 'max', true, 21, 64, 4]);
  const reindexed = createCachePolicy(config({ cache: { policy: 'sink', positions: 'cache', compression: 'participative', participative: { budget: 9, recent: 4 } } })) as ParticipativePolicy;
  assert.is(reindexed.ownPositions, false);
  const win = createCachePolicy(config({ cache: { policy: 'window', sink: 3, compression: 'participative', participative: { budget: 6, recent: 4 } } })) as ParticipativePolicy;
  assert.is(win.options.sink, 0);
});

test('stream cache and capacity', () => {
  const cfg = config({ cache: { policy: 'sink', window: 12, sink: 3 } });
  const cache = createStreamCache(cfg);
  assert.is(cache.reduce, 'none');
  assert.is(cache.compression, undefined);
  assert.throws(() => cache.scoreRequest(1), /no participative compression/);
  assert.is(cacheCapacityFrames(cfg), 9);
  assert.is(cacheCapacityFrames(config({ cache: { policy: 'sink', window: 12, sink: 3, compression: 'participative', participative: { budget: 9 } } })), 12);
});

test('a retune keeps what the cache holds and decides with the new keys from the next plan', () => {
  const before = config({ cache: { policy: 'sink', window: 12, sink: 3 } });
  const cache = createStreamCache(before);
  const F = before.generation.blockFrames;
  for (let b = 0; b < 6; b++) {
    cache.beginBlock(b * F, F);
    cache.endBlock(b * F, F);
  }
  const held = cache.held.map((h) => ({ ...h }));
  const retuned = retuneStreamCache(cache, config({ cache: { policy: 'sink', window: 8, sink: 1 } }));
  assert.is(retuned.ledger, cache.ledger);
  assert.equal(retuned.held, held, 'nothing changes before the next plan');
  assert.equal([(retuned.policy as SinkPolicy).window, (retuned.policy as SinkPolicy).sink], [8, 1]);
  const { plan } = retuned.beginBlock(6 * F, F);
  // sink 1: frames 1 and 2 become the oldest history and leave first; 8 - 1 - F frames of history stay.
  assert.equal(plan.slots.map((s) => [s.frame, s.role]), [[0, 'sink'], [14, 'history'], [15, 'history'], [16, 'history'], [17, 'history']]);
  assert.is(createStreamCache(before).compression, undefined);
  assert.ok(retuneStreamCache(cache, config({ cache: { policy: 'deep-sink', window: 21, sink: 10, compression: 'participative' } })).compression);
});

test.run();
