/** Messages between the hosted generator (generator-host.ts) and its worker (generator-worker.ts). */
import type { Config } from '../config/schema.js';
import type { HeldFrame } from '../cache/types.js';
import type { FrameBlock } from '../loop/types.js';

export type HostRequest =
  | { type: 'create'; id: number; config: Config }
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
  | { type: 'ready'; id: number; width: number; height: number; fps: number; framesPerBlock: number }
  | { type: 'block'; id: number; block: FrameBlock }
  | { type: 'cache'; id: number; cache: HeldFrame[] }
  | { type: 'done'; id: number }
  | { type: 'error'; id: number; error: SerializedError };
