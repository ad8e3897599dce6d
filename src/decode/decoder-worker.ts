/**
 * The streaming decoder's worker thread: opens the decoder itself (its weights never cross a thread
 * boundary) and runs the calls in arrival order. ONNX Runtime's session.run keeps its thread busy for
 * the whole block, which is why that thread is not the main one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isSinkstreamError } from '../errors.js';
import type { Decoder } from './decoder.js';
import { openStreamingDecoder } from './streaming-decoders.js';
import type { DecoderWorkerInit, DecoderWorkerReply, DecoderWorkerRequest, SerializedDecoderError } from './worker-decoder.js';

const port = parentPort;
if (!port) throw new Error('decoder-worker must run as a worker thread');

function serialize(e: unknown): SerializedDecoderError {
  if (isSinkstreamError(e)) return { code: e.code, message: e.message, stack: e.stack };
  const err = e instanceof Error ? e : new Error(String(e));
  return { message: err.message, stack: err.stack };
}

const post = (reply: DecoderWorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(reply, transfer);

const { config, provider } = workerData as DecoderWorkerInit;
const decoder = await openStreamingDecoder(config, provider).then(
  (d): Decoder | null => d,
  (e: unknown) => {
    post({ kind: 'startFailed', error: serialize(e) });
    port.close();
    return null;
  },
);

if (decoder) {
  post({
    kind: 'ready',
    width: decoder.width,
    height: decoder.height,
    framesPerLatentFrame: decoder.framesPerLatentFrame,
    framesForFirstLatentFrame: decoder.framesForFirstLatentFrame,
    backend: decoder.backend,
  });
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: DecoderWorkerRequest) => {
    queue = queue.then(() => handle(decoder, request));
  });
}

async function handle(d: Decoder, { id, call }: DecoderWorkerRequest): Promise<void> {
  try {
    if (call.op === 'decode') {
      const frames = await d.decode(call.latent);
      // Frames may be views of one buffer (TAEHV): each buffer moves once.
      const buffers = [...new Set(frames.map((f) => f.buffer as ArrayBuffer))];
      post({ kind: 'result', id, frames }, buffers);
    } else {
      if (call.op === 'reset') await d.reset();
      else await d.close();
      post({ kind: 'result', id });
    }
  } catch (e) {
    post({ kind: 'error', id, error: serialize(e) });
  }
}
