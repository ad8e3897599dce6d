/** One-line descriptions of configuration for summaries. */
import type { CacheConfig } from '../config/schema.js';

export function describeCache(cache: CacheConfig): string {
  const parts = [`${cache.policy} W=${cache.window}`];
  if (cache.policy !== 'window') parts.push(`S=${cache.sink}`);
  if (cache.policy === 'sink') parts.push(`positions=${cache.positions}`);
  if (cache.policy === 'ema-sink') parts.push(`alpha=${cache.emaAlpha}`);
  if (cache.compression === 'participative') parts.push(`+ participative(N=${cache.participative.budget}, R=${cache.participative.recent})`);
  if (cache.sparse.stride > 1) parts.push(`+ sparse(stride=${cache.sparse.stride}, dense=${cache.sparse.denseFrames})`);
  return parts.join(' ');
}
