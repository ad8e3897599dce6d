/** What the generator yields: one block of finished video frames. */
import type { HeldFrame } from '../cache/types.js';

export interface BlockTimings {
  /** Wall time of the whole block, ms (steps + clean pass + cache work + decode). */
  totalMs: number;
  /**
   * Time inside engine calls (forward / updateCache / scoreCache), ms, the previous block's clean pass included: that
   * pass starts while the previous block decodes, so when a caller asks for this block late it may have run before
   * this block began, and engineMs can then exceed totalMs.
   */
  engineMs: number;
  /** Time decoding latents to pixels, ms. */
  decodeMs: number;
}

export interface FrameBlock {
  /** Block index from 0. */
  index: number;
  /** Video-frame index of the first frame of this block. */
  firstFrame: number;
  width: number;
  height: number;
  /** RGB24 frames, width * height * 3 bytes each, in display order. */
  frames: Uint8Array[];
  /** Denoising steps this block got (0: the block was drawn, `generation.opening: scene`). */
  steps: number;
  timings: BlockTimings;
  /** The cache this block attended to (policy view: which frames, roles, positions). */
  cache: HeldFrame[];
  /** Temporal positions of this block's own frames. */
  queryPositions: number[];
}
