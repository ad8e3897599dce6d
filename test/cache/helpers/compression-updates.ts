/**
 * Every participative-compression combination driven through the stream cache for many blocks
 * (retunes included, a small RoPE table so positions shift), hashed block by block: the engine
 * updates (sources, weights, positions) and what the cache holds. The reference that a refactor of
 * the cache must reproduce byte for byte (the preset render covers deep-sink only).
 *
 * Rewrite the fixture (only when a change of the updates is intended):
 *   npx tsx test/cache/helpers/compression-updates.ts > test/cache/fixtures/compression-updates.json
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { configSchema, type Config, type ConfigInput } from '../../../src/config/schema.js';
import { createStreamCache, retuneStreamCache } from '../../../src/cache/create-policy.js';
import type { CacheUpdate } from '../../../src/engine/types.js';

export const BLOCKS = 40;

type CacheInput = NonNullable<ConfigInput['cache']>;

interface Scenario {
  cache: CacheInput;
  ropeMaxPosition: number;
  /** block index -> the cache keys retuned before it */
  retunes: Record<number, CacheInput>;
}

export const scenarios: Record<string, Scenario> = {
  'deep-sink': {
    cache: { policy: 'deep-sink', window: 21, sink: 10, compression: 'participative', participative: { budget: 16, recent: 4 } },
    ropeMaxPosition: 1024,
    retunes: { 15: { window: 24 } },
  },
  'deep-sink small table': {
    cache: { policy: 'deep-sink', window: 12, sink: 3, compression: 'participative', participative: { budget: 9, recent: 3, score: 'max' } },
    ropeMaxPosition: 40,
    retunes: { 20: { sink: 2 } },
  },
  'sink absolute': {
    cache: { policy: 'sink', window: 12, sink: 3, compression: 'participative', participative: { budget: 9, recent: 4 } },
    ropeMaxPosition: 40,
    retunes: { 12: { compression: 'none' }, 25: { compression: 'participative', participative: { budget: 10, recent: 5 } } },
  },
  'sink absolute rephase': {
    cache: { policy: 'sink', window: 12, sink: 3, compression: 'participative', participative: { budget: 10, recent: 5, rephase: true } },
    ropeMaxPosition: 40,
    retunes: {},
  },
  'sink cache': {
    cache: { policy: 'sink', positions: 'cache', window: 12, sink: 3, compression: 'participative', participative: { budget: 9, recent: 4 } },
    ropeMaxPosition: 40,
    retunes: { 18: { window: 14 } },
  },
  'window own': {
    cache: { policy: 'window', window: 10, compression: 'participative', participative: { budget: 7, recent: 3 } },
    ropeMaxPosition: 40,
    retunes: { 14: { participative: { budget: 8, recent: 6 } } },
  },
  'window rephase': {
    cache: { policy: 'window', window: 10, compression: 'participative', participative: { budget: 7, recent: 3, rephase: true } },
    ropeMaxPosition: 1024,
    retunes: { 10: { policy: 'sink', sink: 2, window: 10 } },
  },
};

function configOf(cache: CacheInput, ropeMaxPosition: number): Config {
  return configSchema.parse({ model: { arch: { ropeMaxPosition } }, cache });
}

function merge(base: CacheInput, over: CacheInput): CacheInput {
  return { ...base, ...over, participative: { ...base.participative, ...over.participative } };
}

function hashUpdate(h: ReturnType<typeof createHash>, u: CacheUpdate): void {
  h.update(JSON.stringify([u.rows, u.terms, u.perLayer]));
  for (const a of [u.sources, u.weights, u.positions]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/** Deterministic scores with many ties (small integers), different each block. */
function scores(length: number, block: number): Float32Array {
  let seed = 1234567 + block * 7919;
  return new Float32Array(length).map(() => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor((seed / 2147483648) * 8);
  });
}

export function driveScenario(name: string): string[] {
  const s = scenarios[name];
  let keys = s.cache;
  let config = configOf(keys, s.ropeMaxPosition);
  let cache = createStreamCache(config);
  const F = config.generation.blockFrames;
  const out: string[] = [];
  for (let b = 0; b < BLOCKS; b++) {
    if (s.retunes[b]) {
      keys = merge(keys, s.retunes[b]);
      config = configOf(keys, s.ropeMaxPosition);
      cache = retuneStreamCache(cache, config);
    }
    const h = createHash('sha256');
    const f0 = b * F;
    const begun = cache.beginBlock(f0, F);
    hashUpdate(h, begun.update);
    h.update(JSON.stringify([begun.plan.queryPositions, cache.held]));
    if (begun.compress) {
      const step = cache.compress(scores(config.model.arch.layers * cache.ledger.rows, b), f0, F);
      hashUpdate(h, step.update);
      h.update(JSON.stringify([step.plan.queryPositions, cache.held]));
    }
    cache.endBlock(f0, F);
    out.push(h.digest('hex'));
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const fixture = Object.fromEntries(Object.keys(scenarios).map((name) => [name, driveScenario(name)]));
  process.stdout.write(`${JSON.stringify(fixture, null, 2)}\n`);
}
