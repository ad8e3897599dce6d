/** Latents to pixels: one block's latent [C, F, H, W] -> RGB24 video frames. */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { OnnxDecoder } from './onnx-decoder.js';
import { SpaceToDepthDecoder } from './space-to-depth.js';

export interface Decoder {
  readonly kind: 'space-to-depth' | 'onnx';
  /** Size of the decoded frames, pixels. */
  readonly width: number;
  readonly height: number;
  /** Video frames per latent frame (space-to-depth: 1). */
  readonly framesPerLatentFrame: number;
  /** latent: [C, F, H, W] float32 -> F * framesPerLatentFrame RGB24 frames (width * height * 3 bytes). */
  decode(latent: Float32Array): Promise<Uint8Array[]>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** The configured decoder; null for `decoder.kind: none` (DiT-only runs produce no pixels). */
export async function createDecoder(config: Pick<Config, 'model' | 'decoder'>): Promise<Decoder | null> {
  const { latentChannels } = config.model.arch;
  const { latentHeight, latentWidth } = config.model;
  switch (config.decoder.kind) {
    case 'none':
      return null;
    case 'space-to-depth': {
      const factor = config.decoder.factor;
      if (latentChannels !== 3 * factor * factor) {
        throw new SinkstreamError(
          'ERR_CONFIG_INVALID',
          `decoder.factor ${factor} needs model.arch.latentChannels = 3 * ${factor}^2 = ${3 * factor * factor}, but model.arch.latentChannels is ${latentChannels}`,
        );
      }
      return new SpaceToDepthDecoder(factor, latentHeight, latentWidth);
    }
    case 'onnx': {
      if (!config.decoder.path) {
        throw new SinkstreamError('ERR_CONFIG_INVALID', "decoder.path: required when decoder.kind is 'onnx' (an .onnx decoder graph, see src/decode/onnx-decoder.ts)");
      }
      return OnnxDecoder.open(config.decoder.path, latentChannels, latentHeight, latentWidth);
    }
  }
}
