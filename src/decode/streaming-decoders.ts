/**
 * The decoders with weights and a stream's memory (`taehv`, `wan-vae`), opened in the calling thread on
 * an ONNX Runtime provider. createDecoder (decoder.ts) opens them inside a worker (worker-decoder.ts).
 */
import type { Config } from '../config/schema.js';
import type { Provider } from '../engine/ort/sessions.js';
import type { Decoder } from './decoder.js';
import { TaehvDecoder } from './taehv/taehv-decoder.js';
import { WanVaeDecoder } from './wan-vae/wan-vae-decoder.js';

export type StreamingDecoderConfig = Pick<Config, 'model' | 'decoder' | 'engine'>;

export async function openStreamingDecoder(config: StreamingDecoderConfig, provider: Provider): Promise<Decoder> {
  const { decoder, model, engine } = config;
  const common = { provider, dtype: decoder.dtype, threads: engine.threads };
  switch (decoder.kind) {
    case 'taehv':
      return TaehvDecoder.open({
        ...common,
        shape: { latentChannels: model.arch.latentChannels, channels: decoder.taehv.channels, latentHeight: model.latentHeight, latentWidth: model.latentWidth },
        weights: decoder.weights,
        syntheticSeed: decoder.syntheticSeed,
        allowSpinning: engine.allowSpinning,
        resident: engine.residentCache,
      });
    case 'wan-vae':
      return WanVaeDecoder.open({
        ...common,
        weights: decoder.weights,
        syntheticSeed: decoder.syntheticSeed,
        latentChannels: model.arch.latentChannels,
        latentHeight: model.latentHeight,
        latentWidth: model.latentWidth,
        resident: engine.residentCache,
      });
    default:
      throw new Error(`internal: decoder.kind '${decoder.kind}' is not a streaming decoder`);
  }
}
