/** The umT5 encoder's thread (umt5-worker.ts) as umt5-encoder.ts calls it, over src/util/worker-rpc.ts. */
import type { Config } from '../config/schema.js';

export interface Umt5WorkerInit {
  text: Config['text'] & { tokenizer: string };
  textLen: number;
}

export interface Umt5WorkerApi {
  /** The prompt's context [textLen, dim], zero past its tokens; its buffer moves to the caller. */
  encode(prompt: string): Float32Array;
  close(): void;
}
