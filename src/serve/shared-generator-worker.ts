/**
 * Worker side of the shared generator (shared-generators.ts, engine.maxBatch >= 2): the generators of every live
 * stream of one engine setup run on this thread, each on an engine of its own (its own cache) wrapped as a member of
 * one ForwardBatcher, so that the streams' forwards that are due together go to the engines as one batched call.
 * Calls are answered as they arrive; one stream's failure rejects only its own calls (a batched engine call that
 * fails fails every stream in it, as it would each alone).
 */
import { parentPort } from 'node:worker_threads';
import { createGenerator, type BlockGenerator } from '../loop/generator.js';
import { RemotePromptEncoder } from '../text/shared-text-encoder.js';
import { createEngine } from '../engine/create-engine.js';
import { ForwardBatcher } from '../engine/forward-batcher.js';
import type { Engine } from '../engine/types.js';
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { serveWorker, transferring } from '../util/worker-rpc.js';
import type { SharedGeneratorWorkerApi } from './generator-messages.js';

interface Slot {
  generator: BlockGenerator | null;
  /** The stream's engine as a member of the batcher (closing it leaves the batcher and closes the engine). */
  engine: Engine;
  text: RemotePromptEncoder | null;
}

const slots = new Map<number, Slot>();
let batcher: ForwardBatcher | null = null;
/** The engine `warm` built, for the next stream. */
let spare: Engine | null = null;

function batcherFor(config: Config): ForwardBatcher {
  batcher ??= new ForwardBatcher(config.engine.maxBatch);
  return batcher;
}

function generatorOf(slot: number): BlockGenerator {
  const g = slots.get(slot)?.generator;
  if (!g) throw new SinkstreamError('ERR_ENGINE', `internal: no stream in slot ${slot} of the shared generator`);
  return g;
}

async function closeSlot(slot: number): Promise<void> {
  const s = slots.get(slot);
  if (!s) return;
  slots.delete(slot);
  try {
    await s.generator?.close();
  } finally {
    await s.engine.close();
    await s.text?.close();
  }
}

await serveWorker<SharedGeneratorWorkerApi>(
  parentPort,
  async () => ({
    handlers: {
      warm: async (config) => {
        batcherFor(config);
        spare ??= await createEngine(config);
      },
      create: async (slot, config, port) => {
        if (slots.has(slot)) throw new SinkstreamError('ERR_ENGINE', `internal: slot ${slot} of the shared generator is taken`);
        const warm = spare !== null;
        const engine = spare ?? (await createEngine(config));
        spare = null;
        const s: Slot = { generator: null, engine: batcherFor(config).member(engine), text: port ? new RemotePromptEncoder(port.port, port.textLen, port.textDim) : null };
        slots.set(slot, s);
        try {
          s.generator = await createGenerator(config, { engine: s.engine, ...(s.text ? { text: s.text } : {}) });
        } catch (e) {
          await closeSlot(slot);
          throw e;
        }
        const g = s.generator;
        return { width: g.width, height: g.height, fps: g.fps, framesPerBlock: g.framesPerBlock, firstBlockFrames: g.framesOfBlock(0), warm };
      },
      next: async (slot, steps) => {
        const block = await generatorOf(slot).next(steps === undefined ? {} : { steps });
        // Copies: the generator may keep views into its own buffers.
        const frames = block.frames.map((f) => f.slice());
        return transferring({ ...block, frames }, frames.map((f) => f.buffer as ArrayBuffer));
      },
      setPrompt: (slot, prompt) => generatorOf(slot).setPrompt(prompt),
      retune: (slot, cache) => generatorOf(slot).retune(cache),
      closeStream: (slot) => closeSlot(slot),
      batchStats: () => batcher?.stats() ?? { calls: 0, forwards: 0, largest: 0 },
      close: async () => {
        for (const slot of [...slots.keys()]) await closeSlot(slot).catch(() => undefined);
        await spare?.close();
        spare = null;
      },
    },
  }),
  { serial: false },
);
