/**
 * The Wan2.1 forward pass of docs/model.md as an ONNX graph, built op by op from the config and weights.
 *
 * One run = one block of F frames at one timestep per frame, attending to [cached rows ‖ block].
 * Inputs:
 *   latent [1, C, F, H, W] f32, timesteps [F] f32, frame_positions [F] f32
 *   cross_k.i / cross_v.i [textLen, d]       the prompt's cross-attention K/V (text-kv-graph.ts)
 *   cache_k.i / cache_v.i [N, d]             cached keys (after RMSNorm, NOT rotated) and values
 *   cache_pos.i [N, 3] f32                   their RoPE positions (frame, row, column)
 *   (cacheKeys 'rotated': cache_k_rot.i [N, d], the keys already rotated at their positions by the
 *   cache-update graph, replaces cache_k.i and cache_pos.i: no rotation of the cache per forward)
 * Outputs:
 *   flow [1, C, F, H, W] f32
 *   k.i / v.i [F*T, d]                       this block's keys (after RMSNorm, not rotated) and values
 *   query_sums.i [F, d] f32                  per-frame sums of the RoPE'd queries (participative scoring)
 *   queries.i [F*T, d]                       every RoPE'd query ('max' scoring)
 * N (cache rows, 0 included) and F are dynamic. d-sized tensors are in the compute type (float32
 * or float16); LayerNorm statistics and RoPE angles are always float32.
 *
 * A pipeline stage (options.layers = [from, to)) holds only those layers: it takes `hidden`
 * [F, T, d] f32 instead of the latent unless it is the first, and gives `hidden_out` [F, T, d] f32
 * instead of the flow unless it is the last; every stage recomputes the (small) time embedding and
 * RoPE angles from timesteps and frame_positions. Per-layer names keep the model's layer index.
 */
import type { ModelDims } from '../model/dims.js';
import type { ModelWeights } from '../model/weights.js';
import { SinkstreamError } from '../errors.js';
import { GraphBuilder } from './graph-builder.js';
import { Layers, weight, type FloatType } from './layers.js';
import { RopeOps, type Rotation } from './rope-ops.js';

export const TRANSFORMER_IO = {
  latent: 'latent',
  timesteps: 'timesteps',
  framePositions: 'frame_positions',
  crossK: (i: number) => `cross_k.${i}`,
  crossV: (i: number) => `cross_v.${i}`,
  cacheK: (i: number) => `cache_k.${i}`,
  cacheV: (i: number) => `cache_v.${i}`,
  cachePos: (i: number) => `cache_pos.${i}`,
  cacheKRot: (i: number) => `cache_k_rot.${i}`,
  flow: 'flow',
  hidden: 'hidden',
  hiddenOut: 'hidden_out',
  blockK: (i: number) => `k.${i}`,
  blockV: (i: number) => `v.${i}`,
  querySums: (i: number) => `query_sums.${i}`,
  queries: (i: number) => `queries.${i}`,
} as const;

export interface TransformerGraphOptions {
  dtype: FloatType;
  /** Ask MultiHeadAttention for its present K/V outputs (the WebGPU provider's flash path needs them). */
  attentionPresent: boolean;
  /** How cached keys come in: un-rotated with their positions (default), or already rotated. */
  cacheKeys?: 'unrotated' | 'rotated';
  /** Pipeline stage: only layers [from, to) (default: all, latent in, flow out). */
  layers?: readonly [number, number];
}

const FLOAT32 = 1;
const FLOAT16 = 10;

export function buildTransformerGraph(dims: ModelDims, weights: ModelWeights, options: TransformerGraphOptions): GraphBuilder {
  const { dim: d, heads: H, layers, latentChannels: C, tokensPerFrame: T, gridHeight: gh, gridWidth: gw } = dims;
  const [pt, ph, pw] = dims.patch;
  if (pt !== 1) throw new SinkstreamError('ERR_CONFIG_INVALID', `model.arch.patch: temporal patch ${pt} is not supported (Wan uses 1)`);
  const dt = options.dtype;
  const io = TRANSFORMER_IO;
  const [from, to] = options.layers ?? [0, layers];
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= layers)) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `pipeline stage layers [${from}, ${to}) are not a range inside the model's ${layers} layers`);
  }
  const first = from === 0;
  const last = to === layers;
  const rotatedCache = options.cacheKeys === 'rotated';
  const b = new GraphBuilder(first && last ? 'sinkstream-transformer' : `sinkstream-transformer-${from}-${to}`);
  const nn = new Layers(b, weights, dt, dims.eps);
  const nn32 = new Layers(b, weights, 'float32', dims.eps); // the time embedding stays float32, as in Wan
  const rope = new RopeOps(b, dims, dt);
  const shape = (...s: number[]): string => b.int64s(s);
  const toDt = (x: string): string => (dt === 'float32' ? x : b.op('Cast', [x], { to: FLOAT16 }));
  const toF32 = (x: string): string => (dt === 'float32' ? x : b.op('Cast', [x], { to: FLOAT32 }));

  // ---- inputs
  const latent = first ? b.input(io.latent, 'float32', [1, C, 'frames', dims.latentHeight, dims.latentWidth]) : '';
  const hidden = first ? '' : b.input(io.hidden, 'float32', ['frames', T, d]);
  const timesteps = b.input(io.timesteps, 'float32', ['frames']);
  const framePositions = b.input(io.framePositions, 'float32', ['frames']);
  const crossK: string[] = [];
  const crossV: string[] = [];
  const cacheK: string[] = [];
  const cacheV: string[] = [];
  const cachePos: string[] = [];
  for (let i = from; i < to; i++) {
    crossK.push(b.input(io.crossK(i), dt, [dims.textLen, d]));
    crossV.push(b.input(io.crossV(i), dt, [dims.textLen, d]));
    if (rotatedCache) {
      cacheK.push(b.input(io.cacheKRot(i), dt, ['cache_rows', d]));
    } else {
      cacheK.push(b.input(io.cacheK(i), dt, ['cache_rows', d]));
      cachePos.push(b.input(io.cachePos(i), 'float32', ['cache_rows', 3]));
    }
    cacheV.push(b.input(io.cacheV(i), dt, ['cache_rows', d]));
  }

  // ---- 1. patchify: Conv3d with kernel = stride = (1, ph, pw) is a Conv2d over each frame.
  function patchify(): string {
    const w = weight(weights, 'patch_embedding.weight');
    const conv = b.floatInitializer('patch_embedding.weight', dt, [d, C, ph, pw], w.data);
    const bias = b.floatInitializer('patch_embedding.bias', dt, [d], weight(weights, 'patch_embedding.bias').data);
    const frames = b.op('Reshape', [b.op('Transpose', [latent], { perm: [0, 2, 1, 3, 4] }), shape(-1, C, dims.latentHeight, dims.latentWidth)]);
    const patches = b.op('Conv', [toDt(frames), conv, bias], { kernel_shape: [ph, pw], strides: [ph, pw] }); // [F, d, gh, gw]
    return b.op('Transpose', [b.op('Reshape', [patches, shape(0, d, T)])], { perm: [0, 2, 1] }); // [F, T, d]
  }

  // ---- 2. time embedding: sin_emb(t) = [cos(t w_i), sin(t w_i)], w_i = 10000^(-i/half)
  function timeEmbedding(): { e: string; e0: string } {
    const half = dims.freqDim / 2;
    const w = new Float32Array(half);
    for (let i = 0; i < half; i++) w[i] = Math.pow(10000, -i / half);
    const arg = b.op('Mul', [b.op('Unsqueeze', [timesteps, shape(1)]), b.initializer('time.frequencies', 'float32', [half], w)]);
    const sinEmb = b.op('Concat', [b.op('Cos', [arg]), b.op('Sin', [arg])], { axis: 1 }); // [F, freqDim]
    const e = nn32.linear(nn32.silu(nn32.linear(sinEmb, 'time_embedding.0')), 'time_embedding.2'); // [F, d]
    const e0 = b.op('Reshape', [nn32.linear(nn32.silu(e), 'time_projection.1'), shape(-1, 6, d)]); // [F, 6, d]
    return { e: toDt(b.op('Unsqueeze', [e, shape(1)])), e0: toDt(e0) }; // every token uses its frame's e, e0
  }

  // ---- 4. one transformer block
  function block(i: number, x: string, e0: string, rot: Rotation): string {
    const p = `blocks.${i}`;
    const table = b.floatInitializer(`${p}.modulation`, dt, [1, 6, d], weight(weights, `${p}.modulation`).data);
    const m = b.node('Split', [b.op('Add', [table, e0])], { axis: 1 }, { outputs: 6 }); // m0..m5 [F, 1, d]

    // self-attention over [cached rows ‖ block]
    const y = nn.modulate(nn.layerNorm(x, d), m[0], m[1]);
    const q = nn.rmsNorm(nn.linear(y, `${p}.self_attn.q`), `${p}.self_attn.norm_q`);
    const k = nn.rmsNorm(nn.linear(y, `${p}.self_attn.k`), `${p}.self_attn.norm_k`);
    const v = nn.linear(y, `${p}.self_attn.v`);
    const kRows = b.output(b.op('Reshape', [k, shape(-1, d)]), dt, ['block_rows', d], io.blockK(i));
    const vRows = b.output(b.op('Reshape', [v, shape(-1, d)]), dt, ['block_rows', d], io.blockV(i));
    const qRot = rope.rotateBlock(q, rot);
    const kRot = rope.rotateBlock(k, rot);
    b.output(toF32(b.op('ReduceSum', [qRot, shape(1)], { keepdims: 0 })), 'float32', ['frames', d], io.querySums(i));
    const qRows = b.output(b.op('Reshape', [qRot, shape(-1, d)]), dt, ['block_rows', d], io.queries(i));
    const cachedKRot = rotatedCache ? cacheK[i - from] : rope.rotateRows(cacheK[i - from], rope.rowsRotation(cachePos[i - from]));
    const keys = b.op('Concat', [cachedKRot, b.op('Reshape', [kRot, shape(-1, d)])], { axis: 0 });
    const values = b.op('Concat', [cacheV[i - from], vRows], { axis: 0 });
    const attn = nn.attention(
      b.op('Unsqueeze', [qRows, shape(0)]),
      b.op('Unsqueeze', [keys, shape(0)]),
      b.op('Unsqueeze', [values, shape(0)]),
      H,
      options.attentionPresent,
    );
    const selfOut = b.op('Reshape', [nn.linear(attn, `${p}.self_attn.o`), shape(-1, T, d)]);
    x = b.op('Add', [x, b.op('Mul', [selfOut, m[2]])]);

    // cross-attention to the prompt (norm3 is an affine LayerNorm; no modulation)
    const cq = nn.rmsNorm(nn.linear(nn.affineLayerNorm(x, `${p}.norm3`), `${p}.cross_attn.q`), `${p}.cross_attn.norm_q`);
    const cross = nn.attention(
      b.op('Reshape', [cq, shape(1, -1, d)]),
      b.op('Unsqueeze', [crossK[i - from], shape(0)]),
      b.op('Unsqueeze', [crossV[i - from], shape(0)]),
      H,
      options.attentionPresent,
    );
    x = b.op('Add', [x, b.op('Reshape', [nn.linear(cross, `${p}.cross_attn.o`), shape(-1, T, d)])]);

    // feed-forward
    const y2 = nn.modulate(nn.layerNorm(x, d), m[3], m[4]);
    const ffn = nn.linear(nn.geluTanh(nn.linear(y2, `${p}.ffn.0`)), `${p}.ffn.2`);
    return b.op('Add', [x, b.op('Mul', [ffn, m[5]])]);
  }

  // ---- 5. head (modulated by e, not e0) and unpatchify
  function head(x: string, e: string): string {
    const table = b.floatInitializer('head.modulation', dt, [1, 2, d], weight(weights, 'head.modulation').data);
    const [shift, scale] = b.node('Split', [b.op('Add', [table, e])], { axis: 1 }, { outputs: 2 });
    return nn.linear(nn.modulate(nn.layerNorm(x, d), shift, scale), 'head.head'); // [F, T, ph*pw*C]
  }

  function unpatchify(out: string): string {
    // features of a token are ordered (ph, pw, C) as in Wan's unpatchify
    const grid = b.op('Reshape', [out, shape(-1, gh, gw, ph, pw, C)]);
    const chw = b.op('Transpose', [grid], { perm: [5, 0, 1, 3, 2, 4] }); // [C, F, gh, ph, gw, pw]
    return b.op('Reshape', [toF32(chw), shape(1, C, -1, dims.latentHeight, dims.latentWidth)]);
  }

  let x = first ? patchify() : toDt(hidden);
  const { e, e0 } = timeEmbedding();
  const rot = rope.blockRotation(framePositions);
  for (let i = from; i < to; i++) x = block(i, x, e0, rot);
  if (last) b.output(unpatchify(head(x, e)), 'float32', [1, C, 'frames', dims.latentHeight, dims.latentWidth], io.flow);
  else b.output(toF32(x), 'float32', ['frames', T, d], io.hiddenOut);
  return b;
}
