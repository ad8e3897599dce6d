/** The ORT engine's worker (ort-worker.ts) as ort-engine.ts calls it, over src/util/worker-rpc.ts. */
import type { Config } from '../../config/schema.js';
import type { Engine, EngineInfo } from '../types.js';

export interface WorkerInit {
  config: Config;
  /** A pipeline stage's layers [from, to) (default: the whole model). */
  layers?: readonly [number, number];
}

/** The engine's calls, each answered on the worker; `ready` and every call's `info` event carry EngineInfo. */
export type OrtWorkerApi = Pick<Engine, 'setPrompt' | 'forward' | 'updateCache' | 'scoreCache' | 'releaseQueries' | 'resetCache' | 'readCache' | 'close'>;

export type OrtWorkerReady = EngineInfo;
