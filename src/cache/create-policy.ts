/** Builds the cache policy, the compressor and the ledger from the validated configuration. */
import type { Config } from '../config/schema.js';
import { modelDims } from '../model/dims.js';
import type { CachePolicy } from './types.js';
import { WindowPolicy } from './policies/window.js';
import { SinkPolicy } from './policies/sink.js';
import { DeepSinkPolicy } from './policies/deep-sink.js';
import { EmaSinkPolicy } from './policies/ema-sink.js';
import { ParticipativeCompressor } from './participative.js';
import { CacheLedger } from './ledger.js';
import { StreamCache } from './stream-cache.js';

export function createCachePolicy(config: Config): CachePolicy {
  const c = config.cache;
  const ropeMaxPosition = config.model.arch.ropeMaxPosition;
  const compression = c.compression === 'participative';
  switch (c.policy) {
    case 'window':
      return new WindowPolicy({ window: c.window, ropeMaxPosition, compression });
    case 'sink':
      return new SinkPolicy({ window: c.window, sink: c.sink, positions: c.positions, ropeMaxPosition, compression });
    case 'deep-sink':
      return new DeepSinkPolicy({ window: c.window, sink: c.sink, ropeMaxPosition, compression });
    case 'ema-sink':
      return new EmaSinkPolicy({ window: c.window, sink: c.sink, alpha: c.emaAlpha, ropeMaxPosition });
  }
}

/** Sink frames as the compressor counts them: none for `window`. */
export function effectiveSink(config: Config): number {
  return config.cache.policy === 'window' ? 0 : config.cache.sink;
}

export function createCompressor(config: Config): ParticipativeCompressor | undefined {
  const c = config.cache;
  if (c.compression !== 'participative') return undefined;
  const dims = modelDims(config);
  return new ParticipativeCompressor({
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
  return new StreamCache(createCachePolicy(config), createCacheLedger(config), createCompressor(config));
}

/**
 * A retune (validated `config`, taking effect at the next block): what the cache holds carries over
 * (the same ledger); a policy and compressor built from the new keys decide from the next plan on. A
 * policy that keeps more frames keeps those it finds, one that keeps fewer evicts at its next plan.
 */
export function retuneStreamCache(current: StreamCache, config: Config): StreamCache {
  return new StreamCache(createCachePolicy(config), current.ledger, createCompressor(config));
}

/**
 * Most latent frames of rows the engine's cache holds at once (pending block rows not counted):
 * W - F, or W with compression (the trigger step attends the full cache before compressing).
 */
export function cacheCapacityFrames(config: Config): number {
  const { window, compression } = config.cache;
  return compression === 'participative' ? window : window - config.generation.blockFrames;
}
