/**
 * Worker side of the hosted generator (generator-host.ts): runs one generator on this thread's
 * own event loop, so the server's thread (sockets, ffmpeg pipes, JSON) never delays a block.
 * Calls are answered as they arrive (a prompt switch or a retune does not wait for the block in flight).
 */
import { parentPort } from 'node:worker_threads';
import { createGenerator, type BlockGenerator } from '../loop/generator.js';
import { RemotePromptEncoder } from '../text/shared-text-encoder.js';
import { createEngine } from '../engine/create-engine.js';
import type { Engine } from '../engine/types.js';
import { SinkstreamError } from '../errors.js';
import { serveWorker, transferring } from '../util/worker-rpc.js';
import type { GeneratorWorkerApi } from './generator-messages.js';

let generator: BlockGenerator | null = null;
let text: RemotePromptEncoder | null = null;
/** The engine built by `warm`, handed to the generator at `create` (the generator does not own it). */
let warmEngine: Engine | null = null;

function created(): BlockGenerator {
  if (!generator) throw new SinkstreamError('ERR_ENGINE', 'internal: the hosted generator was not created');
  return generator;
}

await serveWorker<GeneratorWorkerApi>(
  parentPort,
  async () => ({
    handlers: {
      warm: async (config) => {
        warmEngine ??= await createEngine(config);
      },
      create: async (config, port) => {
        text = port ? new RemotePromptEncoder(port.port, port.textLen, port.textDim) : null;
        generator = await createGenerator(config, { ...(warmEngine ? { engine: warmEngine } : {}), ...(text ? { text } : {}) });
        return {
          width: generator.width,
          height: generator.height,
          fps: generator.fps,
          framesPerBlock: generator.framesPerBlock,
          firstBlockFrames: generator.framesOfBlock(0),
          warm: warmEngine !== null,
        };
      },
      next: async (steps) => {
        const block = await created().next(steps === undefined ? {} : { steps });
        // Copies: the generator may keep views into its own buffers.
        const frames = block.frames.map((f) => f.slice());
        return transferring({ ...block, frames }, frames.map((f) => f.buffer as ArrayBuffer));
      },
      setPrompt: (prompt) => created().setPrompt(prompt),
      retune: (cache) => created().retune(cache),
      close: async () => {
        await generator?.close();
        await warmEngine?.close();
        await text?.close();
      },
    },
  }),
  { serial: false },
);
