/** What the engine suites (the contract over every engine, the native engine's own) build their checks from. */
import type { Engine, ForwardRequest } from '../../../src/engine/types.js';
import type { ReferenceCacheLayer } from '../../../src/engine/reference.js';

/** A deterministic test signal in [-0.9, 0.9]. */
export const wave = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.9);

/** A forward of `frames` latent frames at timestep `t` and the given temporal positions. */
export function forwardRequest(
  frames: number,
  latent: Float32Array,
  t: number,
  positions: number[],
  keepBlockKv: boolean,
  keepQueries: 'none' | 'sum' | 'max' = 'none',
): ForwardRequest {
  return { latent, timesteps: new Float32Array(frames).fill(t), framePositions: Int32Array.from(positions), keepBlockKv, keepQueries };
}

/** The engine's cache read back as the reference's layers (`dim` values per row). */
export async function cacheLayers(engine: Engine, layers: number, dim: number): Promise<ReferenceCacheLayer[]> {
  const c = await engine.readCache();
  return Array.from({ length: layers }, (_, l) => ({
    rows: c.rows,
    keys: c.keys.slice(l * c.rows * dim, (l + 1) * c.rows * dim),
    values: c.values.slice(l * c.rows * dim, (l + 1) * c.rows * dim),
    positions: c.positions.slice(l * c.rows * 3, (l + 1) * c.rows * 3),
  }));
}
