/**
 * The ORT engine's worker thread: loads the weights itself (they never cross a thread boundary),
 * builds the sessions and runs every call in order. session.run blocks its thread, which is why
 * it is not the main one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SinkstreamError } from '../../errors.js';
import { modelDims } from '../../model/dims.js';
import { loadWeights } from '../../model/load-weights.js';
import type { ModelWeights } from '../../model/weights.js';
import { turnFor } from '../../util/gpu-turn.js';
import { rpcEvents, serveWorker, transferring } from '../../util/worker-rpc.js';
import { OrtRuntime } from './ort-runtime.js';
import type { OrtWorkerApi, WorkerInit } from './protocol.js';

/** engine.dtype as ONNX Runtime takes it ('fp8' is the native engine's: the configuration check refuses it here). */
function ortDtype(dtype: WorkerInit['config']['engine']['dtype']): 'float32' | 'float16' {
  if (dtype === 'fp8') throw new SinkstreamError('ERR_CONFIG_INVALID', "engine.dtype 'fp8' needs engine.name 'native'");
  return dtype;
}

/** Builds the sessions from weights already in memory. */
function build(weights: ModelWeights): Promise<OrtRuntime> {
  const { config, layers } = workerData as WorkerInit;
  return OrtRuntime.create({
    dims: modelDims(config),
    weights,
    provider: config.engine.provider,
    threads: config.engine.threads,
    allowSpinning: config.engine.allowSpinning,
    dtype: ortDtype(config.engine.dtype),
    resident: config.engine.residentCache,
    layers,
  });
}

await serveWorker<OrtWorkerApi>(parentPort, async () => {
  const { config } = workerData as WorkerInit;
  // WebGPU sessions of the process share one device: building the sessions and every call take the process's
  // turn; reading the weights from disk does not, so other streams keep the device meanwhile
  const turn = turnFor(config.engine.provider);
  const weights = await loadWeights(config);
  const runtime = await turn(() => build(weights));
  const events = rpcEvents(parentPort!);
  // Every call, answered or failed, is followed by the engine's figures (they reach the caller first).
  const withInfo =
    <A extends unknown[], R>(run: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await turn(() => run(...args));
      } finally {
        events.emit('info', runtime.info());
      }
    };
  return {
    ready: runtime.info(),
    handlers: {
      setPrompt: withInfo((context: Float32Array) => runtime.setPrompt(context)),
      forward: withInfo(async (request) => {
        const result = await runtime.forward(request);
        return transferring(result, [result.flow.buffer as ArrayBuffer]);
      }),
      updateCache: withInfo((update) => runtime.updateCache(update)),
      scoreCache: withInfo(async (queries, reduce) => {
        const scores = (await runtime.scoreCache(queries, reduce)).slice(); // its own buffer, safe to transfer
        return transferring(scores, [scores.buffer]);
      }),
      releaseQueries: withInfo((queriesId: number) => runtime.releaseQueries(queriesId)),
      resetCache: withInfo(() => runtime.resetCache()),
      readCache: withInfo(async () => {
        const cache = await runtime.readCache();
        return transferring(cache, [cache.keys.buffer as ArrayBuffer, cache.values.buffer as ArrayBuffer, cache.positions.buffer as ArrayBuffer]);
      }),
      close: withInfo(() => runtime.close()),
    },
  };
});
