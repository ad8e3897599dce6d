import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { createStreamCache, retuneStreamCache } from '../../src/cache/create-policy.js';

const config = (input: ConfigInput) => configSchema.parse(input);
const compressing = config({ cache: { policy: 'deep-sink', window: 21, sink: 10, compression: 'participative', participative: { budget: 16, recent: 5, score: 'max' } } });

test('query handles: the clean passes the scores need are kept, older ones handed back for release', () => {
  const cache = createStreamCache(compressing);
  const F = compressing.generation.blockFrames; // 3: recent 5 = this block + 2 frames of the last clean pass
  assert.is(cache.reduce, 'max');
  assert.equal(cache.endBlock(0, F, 10), []);
  cache.beginBlock(F, F);
  assert.equal(cache.endBlock(F, F, 11), [10]);
  assert.equal(cache.keptQueries, [11]);
  assert.equal(cache.scoreRequest(99), {
    queries: [
      { queriesId: 99, frames: [0, 3] },
      { queriesId: 11, frames: [1, 3] },
    ],
    reduce: 'max',
  });
});

test('a retune hands the kept handles over; once compression is off, the next clean pass hands them all back', () => {
  const cache = createStreamCache(compressing);
  const F = compressing.generation.blockFrames;
  cache.endBlock(0, F, 7);
  const retuned = retuneStreamCache(cache, config({ cache: { policy: 'deep-sink', window: 24, sink: 10, compression: 'participative', participative: { budget: 16, recent: 5 } } }));
  assert.equal(retuned.keptQueries, [7]);
  assert.equal(retuned.scoreRequest(8).queries.map((q) => q.queriesId), [8, 7]);
  const off = retuneStreamCache(retuned, config({ cache: { policy: 'deep-sink', window: 21, sink: 10 } }));
  assert.is(off.reduce, 'none');
  assert.throws(() => off.scoreRequest(1), /no participative compression/);
  off.beginBlock(F, F);
  assert.equal(off.endBlock(F, F, undefined), [7]);
  assert.equal(off.keptQueries, []);
});

test('a block compresses when the kept cache and the block exceed the window', () => {
  const cfg = config({ cache: { policy: 'sink', window: 12, sink: 3, compression: 'participative', participative: { budget: 9, recent: 3 } } });
  const cache = createStreamCache(cfg);
  const F = cfg.generation.blockFrames;
  const flags: boolean[] = [];
  for (let b = 0; b < 5; b++) {
    const begun = cache.beginBlock(b * F, F);
    flags.push(begun.compress);
    assert.is(begun.plan.slots.length, b * F, 'nothing evicted before compression');
    cache.endBlock(b * F, F);
  }
  // 9 held + 3 = 12 fits; 12 held + 3 overflows.
  assert.equal(flags, [false, false, false, false, true]);
});

test.run();
