/**
 * 3-D RoPE as graph nodes. A head's P = headDim/2 complex pairs are ADJACENT elements (2j, 2j+1);
 * the first ropeSplit[0] pairs turn with the frame position, the next ropeSplit[1] with the row,
 * the last ropeSplit[2] with the column, pair j of a part by `pos * w_j` (ropeFrequencies()).
 *
 * Angles are computed in float32 inside the graph from positions (never in float16: a position
 * near 1000 times w_0 = 1 needs more than float16's 11 bits), then cos/sin are cast to the compute type.
 */
import type { ModelDims } from '../model/dims.js';
import { ropeFrequencies } from '../model/dims.js';
import type { GraphBuilder } from './graph-builder.js';
import type { FloatType } from './layers.js';

export interface Rotation {
  cos: string;
  sin: string;
}

/** [3, P]: row p holds w_j in the columns of part p's pairs, 0 elsewhere; angles = positions @ this. */
export function pairFrequencyTable(dims: ModelDims): Float32Array {
  const P = dims.headDim / 2;
  const freqs = ropeFrequencies(dims);
  const table = new Float32Array(3 * P);
  let j = 0;
  for (let part = 0; part < 3; part++) {
    for (let k = 0; k < dims.ropeSplit[part]; k++, j++) table[part * P + j] = freqs[part][k];
  }
  return table;
}

export class RopeOps {
  readonly pairs: number;
  private freqTable: string | undefined;

  constructor(
    readonly b: GraphBuilder,
    readonly dims: ModelDims,
    readonly dt: FloatType,
  ) {
    this.pairs = dims.headDim / 2;
    const sum = dims.ropeSplit[0] + dims.ropeSplit[1] + dims.ropeSplit[2];
    if (sum !== this.pairs) throw new Error(`ropeSplit [${dims.ropeSplit}] sums to ${sum}, headDim/2 is ${this.pairs}`);
  }

  private table(): string {
    this.freqTable ??= this.b.initializer('rope.pair_frequencies', 'float32', [3, this.pairs], pairFrequencyTable(this.dims));
    return this.freqTable;
  }

  private cosSin(angles: string, shape: number[]): Rotation {
    const s = this.b.int64s(shape);
    const cast = (t: string): string => (this.dt === 'float32' ? t : this.b.op('Cast', [t], { to: 10 }));
    return {
      cos: cast(this.b.op('Reshape', [this.b.op('Cos', [angles]), s])),
      sin: cast(this.b.op('Reshape', [this.b.op('Sin', [angles]), s])),
    };
  }

  /**
   * Rotation of a block's tokens, shaped [F, T, 1, P, 1]: token (f, r, c) sits at
   * (framePositions[f], r, c). framePositions: float32 [F].
   */
  blockRotation(framePositions: string): Rotation {
    const { gridHeight, gridWidth, tokensPerFrame: T } = this.dims;
    const P = this.pairs;
    const table = pairFrequencyTable(this.dims);
    // Row and column angles of every token of a frame, [T, P] (frame pairs: 0).
    const rowCol = new Float32Array(T * P);
    for (let r = 0; r < gridHeight; r++) {
      for (let c = 0; c < gridWidth; c++) {
        const t = r * gridWidth + c;
        for (let j = 0; j < P; j++) rowCol[t * P + j] = r * table[P + j] + c * table[2 * P + j];
      }
    }
    const rowColAngles = this.b.initializer('rope.row_col_angles', 'float32', [T, P], rowCol);
    const frameFreqs = this.b.initializer('rope.frame_frequencies', 'float32', [P], table.slice(0, P));
    const framePos = this.b.op('Unsqueeze', [framePositions, this.b.int64s([1, 2])]); // [F, 1, 1]
    const angles = this.b.op('Add', [this.b.op('Mul', [framePos, frameFreqs]), rowColAngles]); // [F, T, P]
    return this.cosSin(angles, [0, T, 1, P, 1]);
  }

  /** Rotation of cached rows from their positions [N, 3] (frame, row, column), shaped [N, 1, P, 1]. */
  rowsRotation(positions: string): Rotation {
    const angles = this.b.op('MatMul', [positions, this.table()]); // [N, P]
    return this.cosSin(angles, [0, 1, this.pairs, 1]);
  }

  /**
   * Rotates adjacent pairs: (a, b) -> (a cos - b sin, a sin + b cos).
   * `pairShape` views x as [..., heads, P, 2] so that `rot` broadcasts; `outShape` restores x's shape.
   */
  rotate(x: string, rot: Rotation, pairShape: number[], outShape: number[]): string {
    const b = this.b;
    const pairs = b.op('Reshape', [x, b.int64s(pairShape)]);
    const [re, im] = b.node('Split', [pairs], { axis: -1 }, { outputs: 2 });
    const outRe = b.op('Sub', [b.op('Mul', [re, rot.cos]), b.op('Mul', [im, rot.sin])]);
    const outIm = b.op('Add', [b.op('Mul', [re, rot.sin]), b.op('Mul', [im, rot.cos])]);
    return b.op('Reshape', [b.op('Concat', [outRe, outIm], { axis: -1 }), b.int64s(outShape)]);
  }

  /** Block tokens [F, T, d] rotated by `blockRotation`. */
  rotateBlock(x: string, rot: Rotation): string {
    const { heads: H, tokensPerFrame: T, dim } = this.dims;
    return this.rotate(x, rot, [0, T, H, this.pairs, 2], [0, T, dim]);
  }

  /** Rows [N, d] rotated by `rowsRotation`. */
  rotateRows(x: string, rot: Rotation): string {
    const { heads: H, dim } = this.dims;
    return this.rotate(x, rot, [0, H, this.pairs, 2], [0, dim]);
  }
}
