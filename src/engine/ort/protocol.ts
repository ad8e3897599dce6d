/** Messages between the ORT engine (main thread) and its worker. Typed arrays travel as transfers. */
import type { Config } from '../../config/schema.js';
import type { ErrorCode } from '../../errors.js';
import type { CacheUpdate, EngineInfo, ForwardRequest, QuerySelection } from '../types.js';

export interface WorkerInit {
  config: Config;
  /** A pipeline stage's layers [from, to) (default: the whole model). */
  layers?: readonly [number, number];
}

export type WorkerCall =
  | { op: 'setPrompt'; context: Float32Array }
  | { op: 'forward'; request: ForwardRequest }
  | { op: 'updateCache'; update: CacheUpdate }
  | { op: 'scoreCache'; queries: QuerySelection[]; reduce: 'sum' | 'max' }
  | { op: 'releaseQueries'; queriesId: number }
  | { op: 'resetCache' }
  | { op: 'readCache' }
  | { op: 'close' };

export interface WorkerRequest {
  id: number;
  call: WorkerCall;
}

export type WorkerReply =
  | { kind: 'ready'; info: EngineInfo }
  | { kind: 'startFailed'; error: SerializedError }
  | { kind: 'result'; id: number; value: unknown; info: EngineInfo }
  | { kind: 'error'; id: number; error: SerializedError; info?: EngineInfo };

export interface SerializedError {
  code?: ErrorCode;
  message: string;
  stack?: string;
}
