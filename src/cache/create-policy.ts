/** Builds the cache policy (wrapped for participative compression) and the ledger from the validated configuration. */
import type { Config } from '../config/schema.js';
import { modelDims } from '../model/dims.js';
import type { CachePolicy } from './types.js';
import { WindowPolicy } from './policies/window.js';
import { SinkPolicy } from './policies/sink.js';
import { DeepSinkPolicy } from './policies/deep-sink.js';
import { EmaSinkPolicy } from './policies/ema-sink.js';
import { ParticipativePolicy } from './participative.js';
import { SparsePolicy } from './sparse.js';
import { CacheLedger } from './ledger.js';
import { StreamCache } from './stream-cache.js';

/**
 * The policy of `cache.policy`, wrapped in sparse attention when `cache.sparse.stride` > 1 and in
 * participative compression when `cache.compression` says so. `holdsPacked`: the cache already holds
 * sparse slots (a retune): with sparse off they are dropped by a stride-1 wrapper.
 */
export function createCachePolicy(config: Config, holdsPacked = false): CachePolicy {
  let base = createBasePolicy(config);
  if (config.cache.sparse.stride > 1 || holdsPacked) base = wrapSparse(base, config);
  return config.cache.compression === 'participative' ? wrapParticipative(base, config) : base;
}

function wrapSparse(base: CachePolicy, config: Config): SparsePolicy {
  const dims = modelDims(config);
  return new SparsePolicy(base, {
    stride: config.cache.sparse.stride,
    denseFrames: config.cache.sparse.denseFrames,
    tokensPerFrame: dims.tokensPerFrame,
    gridWidth: dims.gridWidth,
    layers: dims.layers,
  });
}

export function createBasePolicy(config: Config): CachePolicy {
  const c = config.cache;
  const ropeMaxPosition = config.model.arch.ropeMaxPosition;
  switch (c.policy) {
    case 'window':
      return new WindowPolicy({ window: c.window, ropeMaxPosition });
    case 'sink':
      return new SinkPolicy({ window: c.window, sink: c.sink, positions: c.positions, ropeMaxPosition });
    case 'deep-sink':
      return new DeepSinkPolicy({ window: c.window, sink: c.sink, ropeMaxPosition });
    case 'ema-sink':
      return new EmaSinkPolicy({ window: c.window, sink: c.sink, alpha: c.emaAlpha, ropeMaxPosition });
  }
}

/** Sink frames as participative compression counts them: none for `window`. */
export function effectiveSink(config: Config): number {
  return config.cache.policy === 'window' ? 0 : config.cache.sink;
}

function wrapParticipative(base: CachePolicy, config: Config): ParticipativePolicy {
  const c = config.cache;
  const dims = modelDims(config);
  return new ParticipativePolicy(base, {
    window: c.window,
    budget: c.participative.budget,
    recent: c.participative.recent,
    sink: effectiveSink(config),
    blockFrames: config.generation.blockFrames,
    tokensPerFrame: dims.tokensPerFrame,
    layers: dims.layers,
    score: c.participative.score,
    rephase: c.participative.rephase,
    reindexed: c.policy === 'sink' && c.positions === 'cache',
  });
}

export function createCacheLedger(config: Config): CacheLedger {
  const dims = modelDims(config);
  return new CacheLedger({ layers: dims.layers, tokensPerFrame: dims.tokensPerFrame, gridHeight: dims.gridHeight, gridWidth: dims.gridWidth });
}

export function createStreamCache(config: Config): StreamCache {
  return new StreamCache(createCachePolicy(config), createCacheLedger(config));
}

/**
 * A retune (validated `config`, taking effect at the next block): what the cache holds carries over
 * (the same ledger, the same kept query handles); a policy built from the new keys decides from the
 * next plan on. A policy that keeps more frames keeps those it finds, one that keeps fewer evicts at
 * its next plan.
 */
export function retuneStreamCache(current: StreamCache, config: Config): StreamCache {
  const holdsPacked = current.ledger.held.some((h) => h.packed !== undefined);
  return new StreamCache(createCachePolicy(config, holdsPacked), current.ledger, current.keptQueries);
}

/**
 * Most latent frames of rows the engine's cache holds at once (pending block rows not counted):
 * W - F, or W with compression (the trigger step attends the full cache before compressing).
 */
export function cacheCapacityFrames(config: Config): number {
  const { window, compression } = config.cache;
  return compression === 'participative' ? window : window - config.generation.blockFrames;
}
