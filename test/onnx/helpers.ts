/** Shared fixtures for the graph tests: a tiny model and deterministic non-trivial inputs. */
import { configSchema } from '../../src/config/schema.js';
import { modelDims } from '../../src/model/dims.js';
import type { ReferenceCacheLayer } from '../../src/engine/reference.js';
import { syntheticWeights } from '../../src/model/synthetic.js';

export const tinyConfig = configSchema.parse({
  model: {
    arch: { dim: 32, layers: 2, heads: 2, ffnDim: 64, latentChannels: 4, textDim: 8, textLen: 5 },
    latentHeight: 4,
    latentWidth: 6,
  },
});
export const tinyDims = modelDims(tinyConfig);
export const tinyWeights = syntheticWeights(tinyDims, 11);

/** Deterministic values in [-0.9, 0.9] that differ with `seed`. */
export function wave(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.9);
}

/** A cache of N rows per layer with scattered, non-trivial (frame, row, column) positions. */
export function cacheRows(N: number, seed = 0): ReferenceCacheLayer[] {
  const d = tinyDims.dim;
  return Array.from({ length: tinyDims.layers }, (_, l) => ({
    rows: N,
    keys: wave(N * d, 10 + l + seed),
    values: wave(N * d, 20 + l + seed),
    positions: Float32Array.from({ length: N * 3 }, (_, i) => {
      const row = Math.floor(i / 3);
      if (i % 3 === 0) return (row * 5 + l) % 9; // frame 0..8
      return i % 3 === 1 ? row % tinyDims.gridHeight : (row * 2) % tinyDims.gridWidth;
    }),
  }));
}

/** ||a - b|| / ||b|| */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
