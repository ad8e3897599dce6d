/**
 * The demo model's parameter-free latent space: a latent pixel holds a factor x factor patch of RGB
 * pixels, so decoding is exact and free.
 *
 * Layout (latent [C, F, H, W], C = 3 * factor^2; frames [F] of [H*factor, W*factor, 3] RGB24):
 *   latent[c, f, h, w] with c = (dy * factor + dx) * 3 + rgb
 *     <-> pixel (row h*factor + dy, column w*factor + dx, channel rgb) of frame f
 *     (the channel order of ONNX DepthToSpace in DCR mode).
 *   value = byte / 127.5 - 1 (in [-1, 1]);  byte = clamp(floor((value + 1) * 127.5 + 0.5), 0, 255).
 */
import type { Decoder } from './decoder.js';
import type { DecoderBackend } from './backend.js';

export class SpaceToDepthDecoder implements Decoder {
  readonly kind = 'space-to-depth' as const;
  readonly framesPerLatentFrame = 1;
  readonly framesForFirstLatentFrame = 1;
  /** TypeScript on the host: float32 latents to bytes. */
  readonly backend: DecoderBackend = { runtime: 'cpu', precision: 'fp32' };
  readonly width: number;
  readonly height: number;

  constructor(
    readonly factor: number,
    readonly latentHeight: number,
    readonly latentWidth: number,
  ) {
    this.width = latentWidth * factor;
    this.height = latentHeight * factor;
  }

  async decode(latent: Float32Array): Promise<Uint8Array[]> {
    return latentToFrames(latent, this.factor, this.latentHeight, this.latentWidth);
  }

  async reset(): Promise<void> {}

  async close(): Promise<void> {}
}

/** Synchronous core of the decoder. */
export function latentToFrames(latent: Float32Array, factor: number, latentHeight: number, latentWidth: number): Uint8Array[] {
  const C = 3 * factor * factor;
  const plane = latentHeight * latentWidth;
  const frames = latent.length / (C * plane);
  if (!Number.isInteger(frames)) {
    throw new RangeError(`latent of ${latent.length} values is not [${C}, F, ${latentHeight}, ${latentWidth}]`);
  }
  const width = latentWidth * factor;
  const out: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    const rgb = new Uint8Array(width * latentHeight * factor * 3);
    for (let c = 0; c < C; c++) {
      const ch = c % 3;
      const sub = (c - ch) / 3;
      const dx = sub % factor;
      const dy = (sub - dx) / factor;
      const src = (c * frames + f) * plane;
      for (let h = 0; h < latentHeight; h++) {
        const rowBase = ((h * factor + dy) * width + dx) * 3 + ch;
        for (let w = 0; w < latentWidth; w++) {
          const v = Math.floor((latent[src + h * latentWidth + w] + 1) * 127.5 + 0.5);
          rgb[rowBase + w * factor * 3] = v < 0 ? 0 : v > 255 ? 255 : v; // NaN -> 0 via Uint8Array
        }
      }
    }
    out.push(rgb);
  }
  return out;
}

/** The exact inverse: RGB24 frames [height, width, 3] -> latent [3*factor^2, F, height/factor, width/factor]. */
export function encodeSpaceToDepth(frames: readonly Uint8Array[], width: number, height: number, factor: number): Float32Array {
  if (width % factor !== 0 || height % factor !== 0) {
    throw new RangeError(`frame ${width}x${height} is not a multiple of factor ${factor}`);
  }
  const latentWidth = width / factor;
  const latentHeight = height / factor;
  const plane = latentHeight * latentWidth;
  const C = 3 * factor * factor;
  const F = frames.length;
  const latent = new Float32Array(C * F * plane);
  for (let f = 0; f < F; f++) {
    const rgb = frames[f];
    if (rgb.length !== width * height * 3) throw new RangeError(`frame ${f} has ${rgb.length} bytes, expected ${width * height * 3}`);
    for (let y = 0; y < height; y++) {
      const h = Math.floor(y / factor);
      const dy = y - h * factor;
      for (let x = 0; x < width; x++) {
        const w = Math.floor(x / factor);
        const dx = x - w * factor;
        for (let ch = 0; ch < 3; ch++) {
          const c = (dy * factor + dx) * 3 + ch;
          latent[(c * F + f) * plane + h * latentWidth + w] = rgb[(y * width + x) * 3 + ch] / 127.5 - 1;
        }
      }
    }
  }
  return latent;
}
