/** Latents to pixels: one block's latent [C, F, H, W] -> RGB24 video frames. */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { SpaceToDepthDecoder } from './space-to-depth.js';
import { WorkerDecoder } from './worker-decoder.js';
import { NativeTaehvDecoder, taehvRunsNative } from './native-taehv.js';
import { NativeWanVaeDecoder } from './native-wan-vae.js';
import type { Provider } from '../engine/ort/sessions.js';
import type { DecoderBackend } from './backend.js';

export { describeDecoderBackend, type DecoderBackend } from './backend.js';

export interface Decoder {
  readonly kind: 'space-to-depth' | 'onnx' | 'taehv' | 'wan-vae';
  /** Size of the decoded frames, pixels. */
  readonly width: number;
  readonly height: number;
  /** Video frames per latent frame once a stream is under way (space-to-depth: 1; Wan VAE, TAEHV: 4). */
  readonly framesPerLatentFrame: number;
  /**
   * Video frames the first latent frame of a stream gives (Wan VAE, TAEHV: 1, since the time axis is
   * causal and the first latent frame stands for one video frame; stateless decoders: framesPerLatentFrame).
   */
  readonly framesForFirstLatentFrame: number;
  /** What really runs the decode (not what the config asked for): bench and render report it. */
  readonly backend: DecoderBackend;
  /**
   * The next block of one stream: latent [C, F, H, W] float32 -> RGB24 frames (width * height * 3 bytes):
   * F * framesPerLatentFrame of them, or framesForFirstLatentFrame + (F - 1) * framesPerLatentFrame for
   * the stream's first block. A streaming decoder carries its own memory from block to block, so
   * decoding block by block gives the frames of decoding the whole clip at once.
   */
  decode(latent: Float32Array): Promise<Uint8Array[]>;
  /** Forget the carried memory: the next decode() starts a new stream. */
  reset(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Video frames a stream's blocks give, in order: block 0 and every later one. */
export function videoFramesOfBlock(decoder: Pick<Decoder, 'framesPerLatentFrame' | 'framesForFirstLatentFrame'>, blockFrames: number, blockIndex: number): number {
  return blockIndex === 0 ? decoder.framesForFirstLatentFrame + (blockFrames - 1) * decoder.framesPerLatentFrame : blockFrames * decoder.framesPerLatentFrame;
}

export interface CreateDecoderOptions {
  /** Where a line of information goes (default: stderr), e.g. which runtime `decoder.runtime: auto` chose. */
  onInfo?: (line: string) => void;
}

/**
 * Which ORT provider `taehv` / `wan-vae` run on. `auto` follows the transformer's engine: ORT's provider.
 * Under the native engine (or `decoder.runtime: native`) createDecoder runs both on the CUDA addon
 * (native-taehv.ts, native-wan-vae.ts); only when that addon is unavailable under runtime `auto` do they run
 * on ONNX Runtime's WebGPU provider (said so through onInfo).
 */
export function decoderProvider(config: Pick<Config, 'decoder' | 'engine'>, onInfo: (line: string) => void): Provider {
  const { runtime, kind } = config.decoder;
  if (runtime === 'cpu' || runtime === 'webgpu') return runtime;
  if (runtime === 'auto' && config.engine.name === 'ort') return config.engine.provider;
  const why = runtime === 'native' ? "decoder.runtime 'native'" : "decoder.runtime 'auto' with engine.name 'native'";
  onInfo(`sinkstream: ${why}: there is no native ${kind} decoder yet; the decoder runs on ONNX Runtime's WebGPU provider`);
  return 'webgpu';
}

/** The configured decoder; null for `decoder.kind: none` (DiT-only runs produce no pixels). */
export async function createDecoder(config: Pick<Config, 'model' | 'decoder' | 'engine'>, options: CreateDecoderOptions = {}): Promise<Decoder | null> {
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
      // ONNX Runtime is loaded only when a decoder runs on it: a native-only run never loads it.
      const { OnnxDecoder } = await import('./onnx-decoder.js');
      return OnnxDecoder.open(config.decoder.path, latentChannels, latentHeight, latentWidth);
    }
    case 'taehv':
    case 'wan-vae': {
      const onInfo = options.onInfo ?? ((line: string) => void process.stderr.write(`${line}\n`));
      if (taehvRunsNative(config)) {
        try {
          return config.decoder.kind === 'taehv' ? await NativeTaehvDecoder.fromConfig(config) : await NativeWanVaeDecoder.fromConfig(config);
        } catch (e) {
          // runtime 'auto' under the native engine: a GPU without cuDNN still decodes, on ORT's WebGPU provider
          if (config.decoder.runtime === 'native' || (e as SinkstreamError).code !== 'ERR_ENGINE_UNAVAILABLE') throw e;
          onInfo(`sinkstream: the native ${config.decoder.kind} decoder is unavailable (${(e as Error).message}); the decoder runs on ONNX Runtime's WebGPU provider`);
          return WorkerDecoder.start(config, decoderProvider(config, () => {}));
        }
      }
      return WorkerDecoder.start(config, decoderProvider(config, onInfo));
    }
  }
}
