/**
 * The control operations, shared by the HTTP API and WebSocket messages. Each returns a plain
 * result; nothing a client sends can throw past here.
 */
import { isSinkstreamError } from '../errors.js';
import type { LiveStream } from './live-stream.js';
import type { CreateRequest, StreamManager } from './stream-manager.js';
import type { CachePatch, ProtocolErrorCode, StreamInfo } from './protocol.js';

export type OpResult<T> = { ok: true; value: T } | { ok: false; code: ProtocolErrorCode; message: string };

const notFound = (id: string): OpResult<never> => ({ ok: false, code: 'not-found', message: `no live stream '${id}'` });

function failure(e: unknown): OpResult<never> {
  if (isSinkstreamError(e)) {
    const code: ProtocolErrorCode = e.code === 'ERR_CLOSED' ? 'not-found' : e.code === 'ERR_PROMPT' ? 'bad-prompt' : e.isBadInput ? 'invalid-config' : 'stream-failed';
    return { ok: false, code, message: `${e.message} [${e.code}]` };
  }
  return { ok: false, code: 'internal', message: (e as Error)?.message ?? String(e) };
}

export class StreamControl {
  constructor(readonly streams: StreamManager) {}

  async create(request: CreateRequest): Promise<OpResult<LiveStream>> {
    const r = await this.streams.create(request);
    return r.ok ? { ok: true, value: r.stream } : r;
  }

  find(id: string): OpResult<LiveStream> {
    const stream = this.streams.get(id);
    return stream ? { ok: true, value: stream } : notFound(id);
  }

  async prompt(id: string, prompt: string): Promise<OpResult<StreamInfo>> {
    const stream = this.streams.get(id);
    if (!stream) return notFound(id);
    try {
      await stream.setPrompt(prompt);
      return { ok: true, value: stream.info() };
    } catch (e) {
      return failure(e);
    }
  }

  retune(id: string, cache: CachePatch): OpResult<StreamInfo> {
    const stream = this.streams.get(id);
    if (!stream) return notFound(id);
    try {
      stream.retune(cache);
      return { ok: true, value: stream.info() };
    } catch (e) {
      return failure(e);
    }
  }

  async stop(id: string): Promise<OpResult<StreamInfo>> {
    const stream = this.streams.get(id);
    if (!stream) return notFound(id);
    await stream.stop('stopped by a client');
    return { ok: true, value: stream.info() };
  }
}
