/**
 * One umT5 encoder per text configuration in a process (its weights are 23 GB in float32), shared
 * by every generator: `acquireUmt5Encoder` hands out references and the encoder closes with the
 * last one (`serve` holds one for its lifetime, so streams one after another share one load). Generators on other threads (serve runs each stream's generator in a worker) reach it
 * through a MessagePort: `connectTextEncoder` here, `RemotePromptEncoder` there.
 */
import { statSync } from 'node:fs';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { modelDims } from '../model/dims.js';
import { SinkstreamError } from '../errors.js';
import { RpcClient, serveRpc, transferring } from '../util/worker-rpc.js';
import { CachedPromptEncoder } from './context-cache.js';
import type { PromptEncoder } from './prompt-encoder.js';
import { Umt5PromptEncoder } from './umt5-encoder.js';
import type { Umt5WorkerInit } from './umt5-messages.js';

type TextConfig = Pick<Config, 'model' | 'text'>;

/** The worker's settings from a config, checked (ERR_CONFIG_INVALID naming the key). */
export function umt5Init(config: TextConfig): Umt5WorkerInit {
  const { text } = config;
  const dims = modelDims(config);
  if (!text.tokenizer) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', "text.tokenizer: required when text.encoder is 'umt5' (umT5's spiece.model, or the folder holding it, e.g. Wan2.1's google/umt5-xxl)");
  }
  if (text.arch.dim !== dims.textDim) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `text.arch.dim ${text.arch.dim} differs from model.arch.textDim ${dims.textDim}: the encoder's context is what the model's cross-attention reads`);
  }
  if (text.arch.dim % text.arch.heads !== 0) throw new SinkstreamError('ERR_CONFIG_INVALID', `text.arch.dim ${text.arch.dim} is not a multiple of text.arch.heads ${text.arch.heads}`);
  return { text: { ...text, tokenizer: text.tokenizer }, textLen: dims.textLen };
}

function identityOf(init: Umt5WorkerInit): string {
  const stamp = (file: string): string => {
    if (file === 'synthetic') return file;
    try {
      const s = statSync(file);
      return `${file}:${s.size}:${s.mtimeMs}`;
    } catch {
      return file;
    }
  };
  const { weights, tokenizer, arch, syntheticSeed, byteFallback } = init.text;
  return JSON.stringify({ weights: stamp(weights), tokenizer: stamp(tokenizer), arch, syntheticSeed: weights === 'synthetic' ? syntheticSeed : null, byteFallback });
}

interface Shared {
  encoder: Promise<CachedPromptEncoder>;
  refs: number;
}

const shared = new Map<string, Shared>();
/** Encoders started in this process so far (each a load of its weights). */
let loads = 0;

/** How many encoders this process has loaded, how many are open now and the references they hold (tests count loads with it). */
export function sharedTextEncoderCounts(): { loads: number; open: number; refs: number } {
  let refs = 0;
  for (const entry of shared.values()) refs += entry.refs;
  return { loads, open: shared.size, refs };
}

export interface SharedPromptEncoder extends PromptEncoder {
  encode(prompt: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** A reference to this process's encoder for `config` (started on first use); close() gives it back. */
export async function acquireUmt5Encoder(config: TextConfig): Promise<SharedPromptEncoder> {
  const init = umt5Init(config);
  const key = `${identityOf(init)}|${init.textLen}|${init.text.provider}|${init.text.threads}|${init.text.cacheSize}|${init.text.cacheDir ?? ''}`;
  let entry = shared.get(key);
  if (!entry) {
    loads++;
    const started: Shared = {
      refs: 0,
      encoder: Umt5PromptEncoder.start(init).then(
        (inner) => new CachedPromptEncoder(inner, { size: init.text.cacheSize, dir: init.text.cacheDir, identity: identityOf(init) }),
      ),
    };
    started.encoder.catch(() => shared.delete(key));
    shared.set(key, started);
    entry = started;
  }
  const held = entry;
  held.refs++;
  let encoder: CachedPromptEncoder;
  try {
    encoder = await held.encoder;
  } catch (e) {
    held.refs--;
    throw e;
  }
  let released = false;
  return {
    kind: encoder.kind,
    textLen: encoder.textLen,
    textDim: encoder.textDim,
    encode: (prompt: string) => encoder.encode(prompt),
    close: async () => {
      if (released) return;
      released = true;
      if (--held.refs > 0) return;
      shared.delete(key);
      await encoder.close();
    },
  };
}

/** What a generator's thread may ask of the shared encoder over its port. */
type SharedEncoderApi = Pick<PromptEncoder, 'encode'> & { close(): void };

/** Serves this process's encoder for `config` on a new port; the port's other end goes to a generator's thread. */
export async function connectTextEncoder(config: TextConfig): Promise<{ port: MessagePort; textLen: number; textDim: number }> {
  const encoder = await acquireUmt5Encoder(config);
  const { port1, port2 } = new MessageChannel();
  serveRpc<SharedEncoderApi>(
    port1,
    {
      encode: async (prompt) => {
        const context = await encoder.encode(prompt);
        return transferring(context, [context.buffer as ArrayBuffer]);
      },
      close: () => undefined, // the port closes once this is answered, which gives the reference back
    },
    undefined,
    { serial: false },
  );
  port1.once('close', () => void encoder.close()); // closed by either end, or by the generator's thread ending
  return { port: port2, textLen: encoder.textLen, textDim: encoder.textDim };
}

/** The generator's side of `connectTextEncoder`. */
export class RemotePromptEncoder implements PromptEncoder {
  readonly kind = 'umt5' as const;
  private readonly encoder: RpcClient<SharedEncoderApi>;

  constructor(
    port: MessagePort,
    readonly textLen: number,
    readonly textDim: number,
  ) {
    this.encoder = new RpcClient<SharedEncoderApi>(port, 'the text encoder');
  }

  encode(prompt: string): Promise<Float32Array> {
    return this.encoder.call('encode', [prompt]);
  }

  close(): Promise<void> {
    return this.encoder.close();
  }
}
