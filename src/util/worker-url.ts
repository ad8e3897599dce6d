/**
 * Starts a worker module that lives next to the calling module: `<name>.ts` when the caller runs as
 * TypeScript (tests and tools under tsx), `<name>.js` when compiled.
 *
 * Under tsx, `execArgv: ['--import', 'tsx']` alone does not reach worker threads on Node 20 (the
 * worker fails with ERR_UNKNOWN_FILE_EXTENSION), so a .ts worker is started from a two-line
 * bootstrap that registers tsx's loader inside the worker and then imports the module.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { gpuTurnWord, releaseGpuTurn } from './gpu-turn.js';

export interface WorkerModule {
  url: URL;
  /** true when the module is TypeScript and needs tsx inside the worker. */
  typescript: boolean;
}

export function workerModuleUrl(callerUrl: string, baseName: string): WorkerModule {
  const typescript = new URL(callerUrl).pathname.endsWith('.ts');
  return { url: new URL(`./${baseName}.${typescript ? 'ts' : 'js'}`, callerUrl), typescript };
}

export function spawnWorker(callerUrl: string, baseName: string, options: WorkerOptions = {}): Worker {
  gpuTurnWord(); // the process's WebGPU turn, inherited by the new worker (gpu-turn.ts)
  const worker = startWorker(workerModuleUrl(callerUrl, baseName), options);
  // worker.threadId reads -1 once the thread has stopped, so it is taken now
  const id = worker.threadId;
  worker.once('exit', () => releaseGpuTurn(id));
  return worker;
}

function startWorker(module: WorkerModule, options: WorkerOptions): Worker {
  if (!module.typescript) return new Worker(module.url, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsxApi)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(module.url.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}
