/**
 * Small graphs that act on the cache where it lives (on the GPU for the WebGPU provider):
 *
 * - update: new rows = sum over terms of weight * Gather([current ‖ pending], sources), per layer,
 *   for keys and values alike (a plain keep is one term of weight 1); positions pass through so
 *   they stay next to the rows; the new keys also come out rotated at their positions, once per
 *   update, for the transformer's `cacheKeys: 'rotated'` input (instead of at every forward).
 * - scores (participative compression): phi_j = (q . rot(k_j)) / (heads * sqrt(headDim)), q the
 *   summed RoPE'd queries ('sum'), or the max over individual queries of that dot product ('max').
 *   Computed in float32 whatever the cache's type.
 * - read: the cache's K/V as float32 host outputs. onnxruntime-node cannot download a 'gpu-buffer'
 *   tensor itself (Tensor.getData aborts the process), so a resident cache is read through a session.
 */
import type { ModelDims } from '../model/dims.js';
import { GraphBuilder } from './graph-builder.js';
import type { FloatType } from './layers.js';
import { RopeOps } from './rope-ops.js';

export const UPDATE_IO = {
  cacheK: (i: number) => `cache_k.${i}`,
  cacheV: (i: number) => `cache_v.${i}`,
  pendingK: (i: number) => `pending_k.${i}`,
  pendingV: (i: number) => `pending_v.${i}`,
  /** int64 [layers, rows, terms] indices into [current ‖ pending] */
  sources: 'sources',
  /** float32 [layers, rows, terms] */
  weights: 'weights',
  /** float32 [layers, rows, 3] */
  positions: 'positions',
  newK: (i: number) => `new_k.${i}`,
  newV: (i: number) => `new_v.${i}`,
  newPos: (i: number) => `new_pos.${i}`,
  /** the new keys rotated at their positions (RoPE), in the compute type */
  newKRot: (i: number) => `new_k_rot.${i}`,
} as const;

export const SCORE_IO = {
  cacheK: (i: number) => `cache_k.${i}`,
  cachePos: (i: number) => `cache_pos.${i}`,
  /** 'sum': float32 [layers, d], the summed queries of every layer */
  querySum: 'query_sum',
  /** 'max': selection s of layer i, [rows_s, d] in the cache's type */
  queries: (s: number, i: number) => `queries.${s}.${i}`,
  /** 'max': int64 [selections], rows [start, end) of each selection */
  starts: 'starts',
  ends: 'ends',
  /** float32 [layers, N] */
  scores: 'scores',
} as const;

export const READ_IO = {
  cacheK: (i: number) => `cache_k.${i}`,
  cacheV: (i: number) => `cache_v.${i}`,
  keys: (i: number) => `keys.${i}`,
  values: (i: number) => `values.${i}`,
} as const;

const FLOAT32 = 1;
const FLOAT16 = 10;

function scalarIndex(b: GraphBuilder, i: number): string {
  return b.initializer(`index_${i}`, 'int64', [], BigInt64Array.of(BigInt(i)));
}

export function buildCacheUpdateGraph(dims: ModelDims, dtype: FloatType): GraphBuilder {
  const b = new GraphBuilder('sinkstream-cache-update');
  const d = dims.dim;
  const io = UPDATE_IO;
  const sources = b.input(io.sources, 'int64', [dims.layers, 'new_rows', 'terms']);
  const weights = b.input(io.weights, 'float32', [dims.layers, 'new_rows', 'terms']);
  const positions = b.input(io.positions, 'float32', [dims.layers, 'new_rows', 3]);
  const lastAxis = b.int64s([2]);
  const termAxis = b.int64s([1]);
  const rope = new RopeOps(b, dims, dtype);
  const blend = (rows: string, src: string, w: string, dt: FloatType): string => {
    const gathered = b.op('Gather', [rows, src], { axis: 0 }); // [new_rows, terms, d]
    const g32 = dt === 'float32' ? gathered : b.op('Cast', [gathered], { to: FLOAT32 });
    const sum = b.op('ReduceSum', [b.op('Mul', [g32, w]), termAxis], { keepdims: 0 }); // [new_rows, d]
    return dt === 'float32' ? sum : b.op('Cast', [sum], { to: FLOAT16 });
  };
  for (let i = 0; i < dims.layers; i++) {
    const index = scalarIndex(b, i);
    const src = b.op('Gather', [sources, index], { axis: 0 }); // [new_rows, terms]
    const w = b.op('Unsqueeze', [b.op('Gather', [weights, index], { axis: 0 }), lastAxis]); // [new_rows, terms, 1]
    for (const [cur, pend, out] of [
      [io.cacheK(i), io.pendingK(i), io.newK(i)],
      [io.cacheV(i), io.pendingV(i), io.newV(i)],
    ] as const) {
      const rows = b.op('Concat', [b.input(cur, dtype, ['cache_rows', d]), b.input(pend, dtype, ['pending_rows', d])], { axis: 0 });
      b.output(blend(rows, src, w, dtype), dtype, ['new_rows', d], out);
    }
    const newPos = b.output(b.op('Gather', [positions, index], { axis: 0 }), 'float32', ['new_rows', 3], io.newPos(i));
    b.output(rope.rotateRows(io.newK(i), rope.rowsRotation(newPos)), dtype, ['new_rows', d], io.newKRot(i));
  }
  return b;
}

/** `selections`: for 'max', how many query tensors (passes) each layer takes. */
export function buildScoreGraph(dims: ModelDims, dtype: FloatType, reduce: 'sum' | 'max', selections = 1): GraphBuilder {
  const b = new GraphBuilder(`sinkstream-cache-score-${reduce}`);
  const d = dims.dim;
  const io = SCORE_IO;
  const rope = new RopeOps(b, dims, 'float32');
  const norm = b.floatConst([1 / (dims.heads * Math.sqrt(dims.headDim))], 'float32', [], 'score_norm');
  const querySum = reduce === 'sum' ? b.input(io.querySum, 'float32', [dims.layers, d]) : '';
  const starts = reduce === 'max' ? b.input(io.starts, 'int64', [selections]) : '';
  const ends = reduce === 'max' ? b.input(io.ends, 'int64', [selections]) : '';
  const perLayer: string[] = [];
  for (let i = 0; i < dims.layers; i++) {
    const k = b.input(io.cacheK(i), dtype, ['cache_rows', d]);
    const k32 = dtype === 'float32' ? k : b.op('Cast', [k], { to: FLOAT32 });
    const pos = b.input(io.cachePos(i), 'float32', ['cache_rows', 3]);
    const kRot = rope.rotateRows(k32, rope.rowsRotation(pos)); // [N, d]
    let scores: string; // [1, N]
    if (reduce === 'sum') {
      const q = b.op('Unsqueeze', [b.op('Gather', [querySum, scalarIndex(b, i)], { axis: 0 }), b.int64s([0])]); // [1, d]
      scores = b.op('MatMul', [q, b.op('Transpose', [kRot], { perm: [1, 0] })]);
    } else {
      const parts: string[] = [];
      for (let s = 0; s < selections; s++) {
        const q = b.input(io.queries(s, i), dtype, [`query_rows_${s}`, d]);
        const at = b.int64s([s]);
        const start = b.op('Gather', [starts, at], { axis: 0 });
        const end = b.op('Gather', [ends, at], { axis: 0 });
        parts.push(b.op('Slice', [q, start, end, b.int64s([0])]));
      }
      const q = parts.length === 1 ? parts[0] : b.op('Concat', parts, { axis: 0 });
      const q32 = dtype === 'float32' ? q : b.op('Cast', [q], { to: FLOAT32 });
      const dots = b.op('MatMul', [q32, b.op('Transpose', [kRot], { perm: [1, 0] })]); // [Q, N]
      scores = b.op('ReduceMax', [dots], { axes: [0], keepdims: 1 });
    }
    perLayer.push(scores);
  }
  const all = perLayer.length === 1 ? perLayer[0] : b.op('Concat', perLayer, { axis: 0 });
  b.output(b.op('Mul', [all, norm]), 'float32', [dims.layers, 'cache_rows'], io.scores);
  return b;
}

export function buildCacheReadGraph(dims: ModelDims, dtype: FloatType): GraphBuilder {
  const b = new GraphBuilder('sinkstream-cache-read');
  const d = dims.dim;
  const io = READ_IO;
  for (let i = 0; i < dims.layers; i++) {
    for (const [input, output] of [
      [io.cacheK(i), io.keys(i)],
      [io.cacheV(i), io.values(i)],
    ] as const) {
      const rows = b.input(input, dtype, ['cache_rows', d]);
      const as32 = dtype === 'float32' ? b.op('Identity', [rows]) : b.op('Cast', [rows], { to: FLOAT32 });
      b.output(as32, 'float32', ['cache_rows', d], output);
    }
  }
  return b;
}
