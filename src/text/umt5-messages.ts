/** Messages between the umT5 encoder (umt5-encoder.ts) and its thread (umt5-worker.ts). */
import type { Config } from '../config/schema.js';

export interface Umt5WorkerInit {
  text: Config['text'] & { tokenizer: string };
  textLen: number;
}

export interface WorkerError {
  code?: string;
  message: string;
}

export type Umt5WorkerRequest = { kind: 'encode'; id: number; prompt: string } | { kind: 'close' };

export type Umt5WorkerReply =
  | { kind: 'ready' }
  | { kind: 'startFailed'; error: WorkerError }
  | { kind: 'context'; id: number; context: Float32Array; tokens: number }
  | { kind: 'error'; id: number; error: WorkerError }
  | { kind: 'closed' };
