/**
 * One turn at the WebGPU device per process. ONNX Runtime's WebGPU provider gives every session of a
 * process the same device, and two threads encoding commands on it at once break each other's command
 * encoders ("CommandEncoder is already finished"; seen on an H200 with two engines' forwards issued
 * together). Each worker thread that runs WebGPU sessions takes the turn around every call.
 *
 * The turn is one Int32 in a SharedArrayBuffer: 0 when free, else the holder's threadId + 1. It reaches
 * every worker through worker_threads' environment data, which each new Worker inherits from the thread
 * that starts it: spawnWorker (worker-url.ts) makes sure the starting thread has it, so workers of
 * workers share the main thread's. Only worker threads wait for it (Atomics.wait is refused on the
 * main thread); a worker that exits while holding it gives it back through spawnWorker's exit handler.
 */
import { getEnvironmentData, isMainThread, setEnvironmentData, threadId } from 'node:worker_threads';

const KEY = 'sinkstream.gpuTurn';
const FREE = 0;
/** Waits are cut into slices so that a turn given back without a notify (a holder that exited) is seen. */
const WAIT_SLICE_MS = 200;
/** Calls of this thread now inside the turn: the turn is given back when the last one ends. */
let heldCalls = 0;

/** The process's turn word, created (and made inheritable) on first use in this thread. */
export function gpuTurnWord(): Int32Array {
  let buffer = getEnvironmentData(KEY) as SharedArrayBuffer | undefined;
  if (!(buffer instanceof SharedArrayBuffer)) {
    buffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    setEnvironmentData(KEY, buffer);
  }
  return new Int32Array(buffer);
}

/** The thread holding the turn, or undefined when it is free. */
export function gpuTurnHolder(): number | undefined {
  const holder = Atomics.load(gpuTurnWord(), 0);
  return holder === FREE ? undefined : holder - 1;
}

/**
 * Runs `call` while holding the turn. The calling thread blocks until the turn is free; a call made
 * while this thread already holds it (calls of one thread interleaved at their awaits) runs at once,
 * and the turn is given back when the thread's last call ends.
 */
export async function withGpuTurn<T>(call: () => Promise<T>): Promise<T> {
  if (isMainThread) throw new Error('withGpuTurn: only worker threads wait for the WebGPU turn');
  const word = gpuTurnWord();
  if (heldCalls === 0) {
    for (;;) {
      const seen = Atomics.compareExchange(word, 0, FREE, threadId + 1);
      if (seen === FREE) break;
      Atomics.wait(word, 0, seen, WAIT_SLICE_MS);
    }
  }
  heldCalls++;
  try {
    return await call();
  } finally {
    if (--heldCalls === 0) releaseGpuTurn(threadId);
  }
}

/** Gives the turn back if `holderThreadId` holds it (also used for a worker that exited holding it). */
export function releaseGpuTurn(holderThreadId: number): void {
  const word = gpuTurnWord();
  if (Atomics.compareExchange(word, 0, holderThreadId + 1, FREE) === holderThreadId + 1) Atomics.notify(word, 0);
}

/** How a worker runs its calls on `provider`: inside the WebGPU turn for 'webgpu', directly otherwise. */
export function turnFor(provider: string): <T>(call: () => Promise<T>) => Promise<T> {
  return provider === 'webgpu' ? withGpuTurn : (call) => call();
}
