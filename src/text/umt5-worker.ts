/**
 * The umT5 encoder's thread (umt5-encoder.ts starts it): loads the tokenizer and weights, builds the
 * session and encodes prompts one at a time, so that neither loading nor session.run (which blocks
 * its thread) ever holds up a generator.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { turnFor } from '../util/gpu-turn.js';
import { serveWorker, transferring } from '../util/worker-rpc.js';
import { Umt5Runtime } from './umt5-runtime.js';
import { Umt5Tokenizer } from './umt5-tokenizer.js';
import { loadUmt5Weights } from './umt5-weights.js';
import type { Umt5WorkerApi, Umt5WorkerInit } from './umt5-messages.js';

await serveWorker<Umt5WorkerApi>(parentPort, async () => {
  const { text, textLen } = workerData as Umt5WorkerInit;
  const tokenizer = await Umt5Tokenizer.open(text.tokenizer, { byteFallback: text.byteFallback });
  const weights = await loadUmt5Weights(text.weights, text.arch, text.syntheticSeed);
  const turn = turnFor(text.provider); // WebGPU sessions of the process share one device (gpu-turn.ts)
  const runtime = await turn(() => Umt5Runtime.create({ arch: text.arch, weights, tokenizer, textLen, provider: text.provider, threads: text.threads }));
  return {
    handlers: {
      encode: async (prompt) => {
        const ids = runtime.tokenize(prompt);
        const context = new Float32Array(runtime.textLen * runtime.arch.dim);
        context.set(await turn(() => runtime.run(ids)));
        return transferring(context, [context.buffer]);
      },
      close: () => turn(async () => runtime.close()),
    },
  };
});
