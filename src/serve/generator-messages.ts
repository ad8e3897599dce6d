/** The hosted generator's worker (generator-worker.ts) as generator-host.ts calls it, over src/util/worker-rpc.ts. */
import type { MessagePort } from 'node:worker_threads';
import type { Config, CacheConfig } from '../config/schema.js';
import type { FrameBlock } from '../loop/types.js';

/** The process's shared text encoder (umt5), served on `port` (src/text/shared-text-encoder.ts). */
export interface TextEncoderPort {
  port: MessagePort;
  textLen: number;
  textDim: number;
}

export interface HostedGeneratorShape {
  width: number;
  height: number;
  fps: number;
  framesPerBlock: number;
  firstBlockFrames: number;
  /** The generator got the engine a `warm` call built. */
  warm: boolean;
}

export interface GeneratorWorkerApi {
  /** Builds the engine ahead of any stream (a spare generator); the next `create` uses it. */
  warm(config: Config): void;
  create(config: Config, text?: TextEncoderPort): HostedGeneratorShape;
  /** The next block; `steps` degrades it to fewer denoising steps. */
  next(steps?: number): FrameBlock;
  setPrompt(prompt: string): void;
  /** A complete, validated cache section (LiveStream owns the stream's configuration). */
  retune(cache: CacheConfig): void;
  close(): void;
}

/** Forwards per engine call in a shared generator worker (src/engine/forward-batcher.ts's BatcherStats). */
export interface SharedBatchStats {
  calls: number;
  forwards: number;
  largest: number;
}

/**
 * The shared generator worker (shared-generator-worker.ts, engine.maxBatch >= 2): several streams' generators on one
 * thread, each on its own engine (its own cache; the engines of one weight set share the weights), their forwards
 * joined by one ForwardBatcher. A stream is a slot number the host chose.
 */
export interface SharedGeneratorWorkerApi {
  /** Builds the first engine (the weights) ahead of any stream; the first `create` takes it. */
  warm(config: Config): void;
  create(slot: number, config: Config, text?: TextEncoderPort): HostedGeneratorShape;
  next(slot: number, steps?: number): FrameBlock;
  setPrompt(slot: number, prompt: string): void;
  retune(slot: number, cache: CacheConfig): void;
  /** Closes the stream's generator and its engine (its cache freed); the others go on. */
  closeStream(slot: number): void;
  batchStats(): SharedBatchStats;
  close(): void;
}
