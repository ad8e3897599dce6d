/**
 * A stand-in for an engine's cache, one number per row and layer instead of K/V vectors: a token of
 * frame f, grid index t, layer l holds f * 1000 + t + l / 8. Applying a `CacheUpdate` blends those
 * numbers exactly as an engine blends K/V rows, so the ledger's lowering can be checked end to end.
 */
import type { CacheUpdate } from '../../../src/engine/types.js';

export function tokenValue(frame: number, t: number, layer: number): number {
  return frame * 1000 + t + layer / 8;
}

export class FakeCache {
  readonly layers: number;
  readonly tokensPerFrame: number;
  values: Float64Array[];
  positions: Float32Array[];
  pending: Float64Array[];

  constructor(layers: number, tokensPerFrame: number) {
    this.layers = layers;
    this.tokensPerFrame = tokensPerFrame;
    this.values = Array.from({ length: layers }, () => new Float64Array(0));
    this.positions = Array.from({ length: layers }, () => new Float32Array(0));
    this.pending = Array.from({ length: layers }, () => new Float64Array(0));
  }

  get rows(): number {
    return this.values[0].length;
  }

  /** A clean pass of frames [first, first + count). */
  keepBlock(first: number, count: number): void {
    const T = this.tokensPerFrame;
    this.pending = Array.from({ length: this.layers }, (_, l) => {
      const p = new Float64Array(count * T);
      for (let f = 0; f < count; f++) for (let t = 0; t < T; t++) p[f * T + t] = tokenValue(first + f, t, l);
      return p;
    });
  }

  update(u: CacheUpdate): void {
    const tables = u.perLayer ? this.layers : 1;
    if (u.sources.length !== tables * u.rows * u.terms) throw new Error(`sources: ${u.sources.length} != ${tables}x${u.rows}x${u.terms}`);
    if (u.weights.length !== u.sources.length) throw new Error('weights and sources differ in length');
    if (u.positions.length !== tables * u.rows * 3) throw new Error(`positions: ${u.positions.length} != ${tables}x${u.rows}x3`);
    const next: Float64Array[] = [];
    const nextPositions: Float32Array[] = [];
    for (let l = 0; l < this.layers; l++) {
      const table = u.perLayer ? l : 0;
      const from = new Float64Array(this.values[l].length + this.pending[l].length);
      from.set(this.values[l]);
      from.set(this.pending[l], this.values[l].length);
      const out = new Float64Array(u.rows);
      for (let r = 0; r < u.rows; r++) {
        let v = 0;
        for (let k = 0; k < u.terms; k++) {
          const i = (table * u.rows + r) * u.terms + k;
          const src = u.sources[i];
          if (!(src >= 0 && src < from.length)) throw new Error(`source ${src} outside [0, ${from.length})`);
          v += u.weights[i] * from[src];
        }
        out[r] = v;
      }
      next.push(out);
      nextPositions.push(u.positions.slice(table * u.rows * 3, (table + 1) * u.rows * 3));
    }
    this.values = next;
    this.positions = nextPositions;
    this.pending = this.pending.map(() => new Float64Array(0));
  }

  /** Deterministic pseudo-random score of every row, [layers, rows]. */
  scores(): Float32Array {
    const out = new Float32Array(this.layers * this.rows);
    for (let l = 0; l < this.layers; l++) {
      for (let r = 0; r < this.rows; r++) out[l * this.rows + r] = scoreOf(this.values[l][r], l);
    }
    return out;
  }
}

export function scoreOf(value: number, layer: number): number {
  const x = Math.sin(value * 12.9898 + layer * 78.233) * 43758.5453;
  return x - Math.floor(x);
}
