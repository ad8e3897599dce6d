/**
 * TAEHV's decoder (madebyollin/taehv, taew2_1 for Wan2.1 latents) as the runtime sees it: the layer
 * indices and key names of the published checkpoints, every tensor's shape, and the memory a stream
 * carries. The PyTorch reference is tools/reference/taehv.py (same layout, documented there).
 *
 *    0 Clamp tanh(x/3)*3   1 conv3x3 latent -> c0 (+bias)   2 ReLU
 *    3-5   MemBlock(c0)  6 Upsample x2  7 TGrow(c0, 1)  8 conv3x3 c0 -> c1 (no bias)
 *    9-11  MemBlock(c1) 12 Upsample x2 13 TGrow(c1, 2) 14 conv3x3 c1 -> c2 (no bias)
 *   15-17  MemBlock(c2) 18 Upsample x2 19 TGrow(c2, 2) 20 conv3x3 c2 -> c3 (no bias)
 *   21 ReLU  22 conv3x3 c3 -> 3 (+bias), frames clamped to [0, 1]
 *
 * A latent frame of H x W gives 4 frames of 8H x 8W; a stream's first 3 frames are dropped, so its
 * first block of F latent frames gives 4F - 3 frames and every later block 4F.
 */
export interface TaehvShape {
  latentChannels: number;
  /** Stage channels c0, c1, c2 and the last conv's input c3 (taew2_1: 256, 128, 64, 64). */
  channels: readonly [number, number, number, number];
  latentHeight: number;
  latentWidth: number;
}

/** Layer indices of the MemBlocks, in order; each carries its previous time step's input. */
export const MEMBLOCKS = [3, 4, 5, 9, 10, 11, 15, 16, 17] as const;
/** Layer index -> temporal stride of the TGrow layers. */
export const TGROWS: ReadonlyMap<number, number> = new Map([
  [7, 1],
  [13, 2],
  [19, 2],
]);
/** Layer indices of the plain 3x3 convs that close a stage (no bias). */
export const STAGE_CONVS = [8, 14, 20] as const;
export const FRAMES_PER_LATENT_FRAME = 4;
export const FRAMES_TO_TRIM = 3;
export const SPACE_UPSCALE = 8;

/** The stage (0, 1, 2) of a layer from 3 to 20: its MemBlocks, Upsample, TGrow and closing conv. */
export function stageOf(layer: number): 0 | 1 | 2 {
  return layer <= 8 ? 0 : layer <= 14 ? 1 : 2;
}

/** Every decoder tensor's key and shape (64 tensors for taew2_1). */
export function expectedShapes(shape: Pick<TaehvShape, 'latentChannels' | 'channels'>): Map<string, number[]> {
  const [c0, c1, c2, c3] = shape.channels;
  const out = new Map<string, number[]>();
  out.set('decoder.1.weight', [c0, shape.latentChannels, 3, 3]);
  out.set('decoder.1.bias', [c0]);
  for (const i of MEMBLOCKS) {
    const c = shape.channels[stageOf(i)];
    out.set(`decoder.${i}.conv.0.weight`, [c, 2 * c, 3, 3]);
    out.set(`decoder.${i}.conv.0.bias`, [c]);
    out.set(`decoder.${i}.conv.2.weight`, [c, c, 3, 3]);
    out.set(`decoder.${i}.conv.2.bias`, [c]);
    out.set(`decoder.${i}.conv.4.weight`, [c, c, 3, 3]);
    out.set(`decoder.${i}.conv.4.bias`, [c]);
  }
  for (const [i, stride] of TGROWS) {
    const c = shape.channels[stageOf(i)];
    out.set(`decoder.${i}.conv.weight`, [c * stride, c, 1, 1]);
  }
  out.set('decoder.8.weight', [c1, c0, 3, 3]);
  out.set('decoder.14.weight', [c2, c1, 3, 3]);
  out.set('decoder.20.weight', [c3, c2, 3, 3]);
  out.set('decoder.22.weight', [3, c3, 3, 3]);
  out.set('decoder.22.bias', [3]);
  return out;
}

/** [1, c, h, w] of each MemBlock's carried input, in MEMBLOCKS order. */
export function stateShapes(shape: TaehvShape): number[][] {
  return MEMBLOCKS.map((i) => {
    const level = stageOf(i);
    return [1, shape.channels[level], shape.latentHeight << level, shape.latentWidth << level];
  });
}

/** Video frames of a block of `latentFrames`: 4F, less the 3 trimmed frames for a stream's first block. */
export function framesOfBlock(latentFrames: number, first: boolean): number {
  return FRAMES_PER_LATENT_FRAME * latentFrames - (first ? FRAMES_TO_TRIM : 0);
}
