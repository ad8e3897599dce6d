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
  return problems;
}
