/** Messages between the hosted generator (generator-host.ts) and its worker (generator-worker.ts). */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import type { HeldFrame } from '../cache/types.js';
import type { FrameBlock } from '../loop/types.js';

export type HostRequest =
  /** Build the engine ahead of any stream (a spare generator); the next `create` uses it. */
  | { type: 'warm'; id: number; config: Config }
  /** `text`: the process's shared text encoder (umt5), served on this port (src/text/shared-text-encoder.ts). */
  | { type: 'create'; id: number; config: Config; text?: { port: MessagePort; textLen: number; textDim: number } }
  | { type: 'next'; id: number; steps?: number }
  | { type: 'prompt'; id: number; prompt: string }
  | { type: 'retune'; id: number; cache: Partial<Config['cache']> }
  | { type: 'cache'; id: number }
  | { type: 'close'; id: number };

export interface SerializedError {
  name: string;
  code?: string;
  message: string;
}

export type HostReply =
  /** `warm`: the generator got the engine a `warm` request built. */
  | { type: 'ready'; id: number; width: number; height: number; fps: number; framesPerBlock: number; firstBlockFrames: number; warm: boolean }
  | { type: 'block'; id: number; block: FrameBlock }
  | { type: 'cache'; id: number; cache: HeldFrame[] }
  | { type: 'done'; id: number }
  | { type: 'error'; id: number; error: SerializedError };
