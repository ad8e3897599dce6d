/**
 * Worker side of the hosted generator (generator-host.ts): runs one generator on this thread's
 * own event loop, so the server's thread (sockets, ffmpeg pipes, JSON) never delays a block.
 * Requests carry an id; every reply names it.
 */
import { parentPort } from 'node:worker_threads';
import { createGenerator, type BlockGenerator } from '../loop/generator.js';
import { RemotePromptEncoder } from '../text/shared-text-encoder.js';
import { createEngine } from '../engine/create-engine.js';
import type { Engine } from '../engine/types.js';
import type { Config } from '../config/schema.js';
import type { HostReply, HostRequest, SerializedError } from './generator-messages.js';

const port = parentPort!;
let generator: BlockGenerator | null = null;
let text: RemotePromptEncoder | null = null;
/** The engine built by `warm`, handed to the generator at `create` (the generator does not own it). */
let warmEngine: Engine | null = null;

function serialize(e: unknown): SerializedError {
  const err = e as { name?: string; code?: string; message?: string };
  return { name: err?.name ?? 'Error', code: typeof err?.code === 'string' ? err.code : undefined, message: err?.message ?? String(e) };
}

function reply(message: HostReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

port.on('message', async (m: HostRequest) => {
  try {
    switch (m.type) {
      case 'warm':
        warmEngine ??= await createEngine(m.config as Config);
        reply({ type: 'done', id: m.id });
        return;
      case 'create': {
        text = m.text ? new RemotePromptEncoder(m.text.port, m.text.textLen, m.text.textDim) : null;
        generator = await createGenerator(m.config as Config, { ...(warmEngine ? { engine: warmEngine } : {}), ...(text ? { text } : {}) });
        reply({
          type: 'ready',
          id: m.id,
          width: generator.width,
          height: generator.height,
          fps: generator.fps,
          framesPerBlock: generator.framesPerBlock,
          firstBlockFrames: generator.framesOfBlock(0),
          warm: warmEngine !== null,
        });
        return;
      }
      case 'next': {
        const block = await generator!.next(m.steps === undefined ? {} : { steps: m.steps });
        // Copies: the generator may keep views into its own buffers.
        const frames = block.frames.map((f) => f.slice());
        reply({ type: 'block', id: m.id, block: { ...block, frames } }, frames.map((f) => f.buffer as ArrayBuffer));
        return;
      }
      case 'prompt':
        await generator!.setPrompt(m.prompt);
        reply({ type: 'done', id: m.id });
        return;
      case 'retune':
        generator!.retune(m.cache);
        reply({ type: 'done', id: m.id });
        return;
      case 'cache':
        reply({ type: 'cache', id: m.id, cache: generator?.cacheView() ?? [] });
        return;
      case 'close':
        await generator?.close();
        await warmEngine?.close();
        await text?.close();
        reply({ type: 'done', id: m.id });
        return;
    }
  } catch (e) {
    reply({ type: 'error', id: m.id, error: serialize(e) });
  }
});
