/**
 * A streaming decoder (`taehv`, `wan-vae`) run in its own worker thread (decoder-worker.ts), seen from
 * the calling thread: every call goes over src/util/worker-rpc.ts, latents and frames travel as
 * transferred buffers, so a block's decode never blocks the event loop (the encoder, the server and
 * the transformer's worker go on meanwhile).
 */
import type { Provider } from '../engine/ort/sessions.js';
import { spawnWorker } from '../util/worker-url.js';
import { RpcClient } from '../util/worker-rpc.js';
import type { Decoder } from './decoder.js';
import type { DecoderBackend } from './backend.js';
import type { StreamingDecoderConfig } from './streaming-decoders.js';

export interface DecoderWorkerInit {
  config: StreamingDecoderConfig;
  provider: Provider;
}

export type DecoderWorkerApi = Pick<Decoder, 'decode' | 'reset' | 'close'>;

export type DecoderWorkerReady = Pick<Decoder, 'width' | 'height' | 'framesPerLatentFrame' | 'framesForFirstLatentFrame' | 'backend'>;

export class WorkerDecoder implements Decoder {
  private constructor(
    readonly kind: 'taehv' | 'wan-vae',
    private readonly worker: RpcClient<DecoderWorkerApi>,
    readonly width: number,
    readonly height: number,
    readonly framesPerLatentFrame: number,
    readonly framesForFirstLatentFrame: number,
    readonly backend: DecoderBackend,
  ) {}

  static async start(config: StreamingDecoderConfig, provider: Provider): Promise<WorkerDecoder> {
    const kind = config.decoder.kind;
    if (kind !== 'taehv' && kind !== 'wan-vae') throw new Error(`internal: decoder.kind '${kind}' does not run in a worker`);
    const init: DecoderWorkerInit = { config, provider };
    const worker = spawnWorker(import.meta.url, 'decoder-worker', { workerData: init });
    const { client, ready } = await RpcClient.start<DecoderWorkerApi, DecoderWorkerReady>(worker, `the ${kind} decoder`);
    return new WorkerDecoder(kind, client, ready.width, ready.height, ready.framesPerLatentFrame, ready.framesForFirstLatentFrame, ready.backend);
  }

  decode(latent: Float32Array): Promise<Uint8Array[]> {
    const copy = latent.slice(); // the caller keeps its latent (the generator re-uses it for the clean pass)
    return this.worker.call('decode', [copy], [copy.buffer]);
  }

  reset(): Promise<void> {
    return this.worker.call('reset', []);
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
