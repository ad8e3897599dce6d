/**
 * The umT5 encoder's thread (umt5-encoder.ts starts it): loads the tokenizer and weights, builds the
 * session and encodes prompts one at a time, so that neither loading nor session.run (which blocks
 * its thread) ever holds up a generator.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isSinkstreamError } from '../errors.js';
import { Umt5Runtime } from './umt5-runtime.js';
import { Umt5Tokenizer } from './umt5-tokenizer.js';
import { loadUmt5Weights } from './umt5-weights.js';
import type { Umt5WorkerInit, Umt5WorkerReply, Umt5WorkerRequest, WorkerError } from './umt5-messages.js';

const port = parentPort;
if (!port) throw new Error('umt5-worker must run as a worker thread');

function serialize(e: unknown): WorkerError {
  if (isSinkstreamError(e)) return { code: e.code, message: e.message };
  return { message: e instanceof Error ? e.message : String(e) };
}

const post = (reply: Umt5WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(reply, transfer);

async function start(): Promise<Umt5Runtime> {
  const { text, textLen } = workerData as Umt5WorkerInit;
  const tokenizer = await Umt5Tokenizer.open(text.tokenizer, { byteFallback: text.byteFallback });
  const weights = await loadUmt5Weights(text.weights, text.arch, text.syntheticSeed);
  return Umt5Runtime.create({ arch: text.arch, weights, tokenizer, textLen, provider: text.provider, threads: text.threads });
}

const runtime = await start().then(
  (r): Umt5Runtime | null => r,
  (e: unknown) => {
    post({ kind: 'startFailed', error: serialize(e) });
    port.close();
    return null;
  },
);

if (runtime) {
  post({ kind: 'ready' });
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: Umt5WorkerRequest) => {
    queue = queue.then(async () => {
      if (request.kind === 'close') {
        await runtime.close();
        post({ kind: 'closed' });
        port.close();
        return;
      }
      try {
        const ids = runtime.tokenize(request.prompt);
        const context = new Float32Array(runtime.textLen * runtime.arch.dim);
        context.set(await runtime.run(ids));
        post({ kind: 'context', id: request.id, context, tokens: ids.length }, [context.buffer as ArrayBuffer]);
      } catch (e) {
        post({ kind: 'error', id: request.id, error: serialize(e) });
      }
    });
  });
}
