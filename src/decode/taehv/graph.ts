/**
 * TAEHV's decoder as an ONNX graph: one run decodes one block of latent frames, all its time steps at
 * once (time is the batch axis), with the stream's memory as graph IO.
 *
 * Inputs:
 *   latent [1, C, F, H, W] float32            the block, in the transformer's layout
 *   state.m [1, c, h, w] (compute type)       MemBlock m's input at the step before this block
 *                                             (absent from the `first` graph, where it is zero)
 * Outputs:
 *   frames   rgb24: uint8 [N, 8H, 8W, 3]      N = 4F, or 4F - 3 for the `first` graph (a stream's
 *            float: float32 [N, 3, 8H, 8W]     first 3 frames are dropped); values in [0, 1] / bytes
 *   state_out.m [1, c, h, w]                  MemBlock m's input at this block's last step
 *
 * A MemBlock over time steps x_0..x_{T-1} with carried s: past = [s, x_0, .., x_{T-2}], the block's
 * own input one step back, exactly what decoding the whole clip at once gives it.
 */
import { GraphBuilder } from '../../onnx/graph-builder.js';
import { weight, type FloatType } from '../../onnx/layers.js';
import type { ModelWeights } from '../../model/weights.js';
import { FRAMES_TO_TRIM, MEMBLOCKS, SPACE_UPSCALE, stageOf, stateShapes, STAGE_CONVS, TGROWS, type TaehvShape } from './architecture.js';

export const TAEHV_IO = {
  latent: 'latent',
  state: (m: number) => `state.${m}`,
  frames: 'frames',
  stateOut: (m: number) => `state_out.${m}`,
} as const;

export interface TaehvGraphOptions {
  dtype: FloatType;
  /** A stream's first block: no state inputs (zero memory), the first 3 frames dropped. */
  first: boolean;
  /** `rgb24` (default): bytes, interleaved, ready for the encoder; `float`: planar float32 in [0, 1] (parity checks). */
  output?: 'rgb24' | 'float';
}

const FLOAT32 = 1;
const FLOAT16 = 10;
const UINT8 = 2;
const INT64_MAX = 2 ** 62;

export function buildTaehvGraph(shape: TaehvShape, weights: ModelWeights, options: TaehvGraphOptions): GraphBuilder {
  const { latentChannels: C, latentHeight: H, latentWidth: W } = shape;
  const dt = options.dtype;
  const io = TAEHV_IO;
  const b = new GraphBuilder(options.first ? 'sinkstream-taehv-first' : 'sinkstream-taehv');
  const ints = (...v: number[]): string => b.int64s(v);
  const param = (key: string): string => {
    const w = weight(weights, key);
    return b.floatInitializer(key, dt, w.shape, w.data);
  };
  const conv = (x: string, layer: string, bias: boolean): string => {
    const w = weight(weights, `${layer}.weight`);
    const k = w.shape[2];
    const inputs = [x, param(`${layer}.weight`)];
    if (bias) inputs.push(param(`${layer}.bias`));
    return b.op('Conv', inputs, { kernel_shape: [k, k], pads: [k >> 1, k >> 1, k >> 1, k >> 1] });
  };
  const relu = (x: string): string => b.op('Relu', [x]);
  const timeSlice = (x: string, start: number, end: number): string => b.op('Slice', [x, ints(start), ints(end), ints(0)]);

  // latent [1, C, F, H, W] -> [F, C, H, W] in the compute type
  const latent = b.input(io.latent, 'float32', [1, C, 'frames', H, W]);
  let x = b.op('Reshape', [b.op('Transpose', [latent], { perm: [0, 2, 1, 3, 4] }), ints(-1, C, H, W)]);
  if (dt === 'float16') x = b.op('Cast', [x], { to: FLOAT16 });

  // 0-2: Clamp, conv, ReLU
  const three = b.floatConst([3], dt, [], 'three');
  const third = b.floatConst([1 / 3], dt, [], 'one_third');
  x = b.op('Mul', [b.op('Tanh', [b.op('Mul', [x, third])]), three]);
  x = relu(conv(x, 'decoder.1', true));

  const states = stateShapes(shape);
  const scales = b.floatConst([1, 1, 2, 2], 'float32', [4], 'upsample_scales');
  let m = 0;
  for (let layer = 3; layer <= 20; layer++) {
    if ((MEMBLOCKS as readonly number[]).includes(layer)) {
      const dims = states[m];
      const before = options.first ? null : b.input(io.state(m), dt, dims);
      // past = [carried, x_0 .. x_{T-2}]; the first block's carried input is zero (a zero-padded shift)
      const past = before
        ? timeSlice(b.op('Concat', [before, x], { axis: 0 }), 0, -1)
        : timeSlice(b.op('Pad', [x, ints(1, 0, 0, 0, 0, 0, 0, 0)], { mode: 'constant' }), 0, -1);
      b.output(timeSlice(x, -1, INT64_MAX), dt, dims, io.stateOut(m));
      const p = `decoder.${layer}.conv`;
      let h = relu(conv(b.op('Concat', [x, past], { axis: 1 }), `${p}.0`, true));
      h = relu(conv(h, `${p}.2`, true));
      h = conv(h, `${p}.4`, true);
      x = relu(b.op('Add', [h, x]));
      m++;
    } else if (TGROWS.has(layer)) {
      // 1x1 conv c -> s*c; channel group k is time step k of the s steps each input step becomes
      const stride = TGROWS.get(layer)!;
      const c = shape.channels[stageOf(layer)];
      x = b.op('Conv', [x, param(`decoder.${layer}.conv.weight`)], { kernel_shape: [1, 1] });
      if (stride > 1) {
        const level = stageOf(layer) + 1; // the stage's Upsample has already doubled its size
        x = b.op('Reshape', [x, ints(-1, c, H << level, W << level)]);
      }
    } else if ((STAGE_CONVS as readonly number[]).includes(layer)) {
      x = conv(x, `decoder.${layer}`, false);
    } else {
      // 6, 12, 18: nearest-neighbour upsample x2 (PyTorch's 'nearest': source index = floor(dst / 2))
      x = b.op('Resize', [x, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    }
  }
  // 21-22: ReLU, conv to RGB; clamp to [0, 1]
  x = conv(relu(x), 'decoder.22', true);
  if (options.first) x = timeSlice(x, FRAMES_TO_TRIM, INT64_MAX);
  if (dt === 'float16') x = b.op('Cast', [x], { to: FLOAT32 });
  const zero = b.floatConst([0], 'float32', [], 'zero');
  const one = b.floatConst([1], 'float32', [], 'one');
  x = b.op('Clip', [x, zero, one]);
  const outH = H * SPACE_UPSCALE;
  const outW = W * SPACE_UPSCALE;
  if (options.output === 'float') {
    b.output(x, 'float32', ['video_frames', 3, outH, outW], io.frames);
  } else {
    // byte = floor(v * 255 + 0.5), interleaved RGB
    const bytes = b.op('Floor', [b.op('Add', [b.op('Mul', [x, b.floatConst([255], 'float32', [], 'c255')]), b.floatConst([0.5], 'float32', [], 'half')])]);
    const nhwc = b.op('Transpose', [bytes], { perm: [0, 2, 3, 1] });
    b.output(b.op('Cast', [nhwc], { to: UINT8 }), 'uint8', ['video_frames', outH, outW, 3], io.frames);
  }
  return b;
}
