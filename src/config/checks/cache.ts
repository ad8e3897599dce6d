/** Impossible cache configurations: how the cache keys combine with each other and the model's RoPE table. */
import type { ConfigProblem } from '../problems.js';
import type { Config } from '../schema.js';

export function cacheConfigProblems(config: Config): ConfigProblem[] {
  const c = config.cache;
  const F = config.generation.blockFrames;
  const ropeMax = config.model.arch.ropeMaxPosition;
  const problems: ConfigProblem[] = [];
  const add = (path: string, message: string): void => {
    problems.push({ path, message });
  };

  if (c.policy === 'window') {
    if (c.window <= F) add('cache.window', `${c.window} must be larger than generation.blockFrames (${F}): no frame of history would stay`);
  } else {
    if (c.window <= c.sink + F) {
      add('cache.window', `${c.window} must be larger than cache.sink + generation.blockFrames (${c.sink} + ${F}): no frame of history would stay`);
    }
    if (c.policy === 'ema-sink' && c.sink < 1) add('cache.sink', 'ema-sink needs at least 1 sink slot to fuse evicted frames into');
  }
  if (c.window + F > ropeMax) {
    add('cache.window', `${c.window} plus a block (${F}) exceeds the RoPE table (model.arch.ropeMaxPosition ${ropeMax})`);
  }

  if (c.compression === 'participative') {
    const p = c.participative;
    const sink = c.policy === 'window' ? 0 : c.sink;
    if (c.policy === 'ema-sink') {
      add('cache.compression', "participative compression does not combine with ema-sink (EMA fuses whole frames as they leave, compression drops single tokens); use policy sink or deep-sink");
    }
    if (p.budget > c.window) add('cache.participative.budget', `${p.budget} exceeds cache.window (${c.window})`);
    if (p.recent < F) add('cache.participative.recent', `${p.recent} is smaller than generation.blockFrames (${F}); recent frames include the current block`);
    if (sink + p.recent >= p.budget) {
      add('cache.participative.budget', `${p.budget} leaves no top-C tokens: it must exceed sink + recent (${sink} + ${p.recent})`);
    }
  }
  if (c.sparse.stride > 1) {
    const sp = c.sparse;
    if (c.policy === 'ema-sink') {
      add('cache.sparse.stride', "sparse attention does not combine with ema-sink (EMA fuses whole frames into the sink as they leave, far frames are thinned); use policy sink, deep-sink or window, or stride 1");
    }
    if (c.compression === 'participative') {
      add('cache.sparse.stride', 'sparse attention does not combine with participative compression (both thin the far cache); set cache.compression none or cache.sparse.stride 1');
    }
    if (sp.denseFrames < F) add('cache.sparse.denseFrames', `${sp.denseFrames} is smaller than generation.blockFrames (${F}): the frames entering the cache stay dense for a block`);
    const sink = c.policy === 'window' ? 0 : c.sink;
    const far = c.window - sink - F - sp.denseFrames;
    if (far < sp.stride) {
      add(
        'cache.sparse.stride',
        `${sp.stride} far frames make one packed slot, but cache.window ${c.window} leaves ${Math.max(0, far)} beyond the sink (${sink}), the block (${F}) and cache.sparse.denseFrames (${sp.denseFrames}): nothing would ever be thinned`,
      );
    }
  }
  return problems;
}
