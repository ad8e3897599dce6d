/**
 * The streaming decoder's worker thread: opens the decoder itself (its weights never cross a thread
 * boundary) and runs the calls in arrival order. ONNX Runtime's session.run keeps its thread busy for
 * the whole block, which is why that thread is not the main one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { turnFor } from '../util/gpu-turn.js';
import { serveWorker, transferring } from '../util/worker-rpc.js';
import { openStreamingDecoder } from './streaming-decoders.js';
import type { DecoderWorkerApi, DecoderWorkerInit, DecoderWorkerReady } from './worker-decoder.js';

await serveWorker<DecoderWorkerApi>(parentPort, async () => {
  const { config, provider } = workerData as DecoderWorkerInit;
  const turn = turnFor(provider); // WebGPU sessions of the process share one device (gpu-turn.ts)
  const decoder = await turn(() => openStreamingDecoder(config, provider));
  const ready: DecoderWorkerReady = {
    width: decoder.width,
    height: decoder.height,
    framesPerLatentFrame: decoder.framesPerLatentFrame,
    framesForFirstLatentFrame: decoder.framesForFirstLatentFrame,
    backend: decoder.backend,
  };
  return {
    ready,
    handlers: {
      decode: async (latent: Float32Array) => {
        const frames = await turn(() => decoder.decode(latent));
        // Frames may be views of one buffer (TAEHV): each buffer moves once.
        return transferring(frames, [...new Set(frames.map((f) => f.buffer as ArrayBuffer))]);
      },
      reset: () => turn(async () => decoder.reset()),
      close: () => turn(async () => decoder.close()),
    },
  };
});
