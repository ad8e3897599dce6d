/**
 * The ORT engine's worker thread: loads the weights itself (they never cross a thread boundary),
 * builds the sessions and runs every call in order. session.run blocks its thread, which is why
 * it is not the main one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isSinkstreamError } from '../../errors.js';
import { modelDims } from '../../model/dims.js';
import { loadWeights } from '../../model/load-weights.js';
import { OrtRuntime } from './ort-runtime.js';
import type { SerializedError, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('ort-worker must run as a worker thread');

function serialize(e: unknown): SerializedError {
  if (isSinkstreamError(e)) return { code: e.code, message: e.message, stack: e.stack };
  const err = e instanceof Error ? e : new Error(String(e));
  return { message: err.message, stack: err.stack };
}

const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(reply, transfer);

async function start(): Promise<OrtRuntime> {
  const { config, layers } = workerData as WorkerInit;
  const weights = await loadWeights(config);
  return OrtRuntime.create({
    dims: modelDims(config),
    weights,
    provider: config.engine.provider,
    threads: config.engine.threads,
    allowSpinning: config.engine.allowSpinning,
    dtype: config.engine.dtype,
    resident: config.engine.residentCache,
    layers,
  });
}

// A failed start is reported once, as a message, and the worker then ends on its own. Throwing here
// as well would raise the Worker's 'error' event, which can reach the main thread before the message
// and would replace the error's stable code (ERR_ENGINE_UNAVAILABLE, ...) with a generic one.
const started = await start().then(
  (r): OrtRuntime | null => r,
  (e: unknown) => {
    post({ kind: 'startFailed', error: serialize(e) });
    port.close();
    return null;
  },
);

if (started) {
  post({ kind: 'ready', info: started.info() });
  // Calls run one at a time, in arrival order.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    queue = queue.then(() => handle(started, request));
  });
}

async function handle(runtime: OrtRuntime, { id, call }: WorkerRequest): Promise<void> {
  try {
    let value: unknown;
    const transfer: ArrayBuffer[] = [];
    switch (call.op) {
      case 'setPrompt':
        value = await runtime.setPrompt(call.context);
        break;
      case 'forward': {
        const result = await runtime.forward(call.request);
        transfer.push(result.flow.buffer as ArrayBuffer);
        value = result;
        break;
      }
      case 'updateCache':
        value = await runtime.updateCache(call.update);
        break;
      case 'scoreCache': {
        const scores = await runtime.scoreCache(call.queries, call.reduce);
        const copy = scores.slice(); // its own buffer, safe to transfer
        transfer.push(copy.buffer);
        value = copy;
        break;
      }
      case 'releaseQueries':
        value = await runtime.releaseQueries(call.queriesId);
        break;
      case 'resetCache':
        value = await runtime.resetCache();
        break;
      case 'readCache': {
        const cache = await runtime.readCache();
        transfer.push(cache.keys.buffer as ArrayBuffer, cache.values.buffer as ArrayBuffer, cache.positions.buffer as ArrayBuffer);
        value = cache;
        break;
      }
      case 'close':
        await runtime.close();
        value = undefined;
        break;
    }
    post({ kind: 'result', id, value, info: runtime.info() }, transfer);
  } catch (e) {
    post({ kind: 'error', id, error: serialize(e), info: runtime.info() });
  }
}
