/**
 * One WebSocket connection: it controls streams (create, prompt, retune, stop) and watches at most
 * one of them at a time. Every text frame is parsed and validated; a bad one gets an error reply
 * and the connection stays. A client that does not read its replies is cut off at the hard cap.
 */
import type { WebSocket, RawData } from 'ws';
import { controlMessage, describeProblem, type ControlMessage, type ServerMessage } from './protocol.js';
import type { StreamControl } from './stream-control.js';
import type { LiveStream } from './live-stream.js';
import type { ServerMetrics } from './metrics.js';
import { CloseCode } from './protocol.js';

/** A client cut off for not reading gets this long to finish the close handshake. */
const CLOSE_GRACE_MS = 2000;

export class WsSession {
  private watching: LiveStream | null = null;
  private readonly onEnded = () => {
    this.watching = null;
  };

  constructor(
    private readonly socket: WebSocket,
    private readonly control: StreamControl,
    private readonly metrics: ServerMetrics,
    private readonly hardCapBytes: number,
  ) {
    socket.on('message', (data, isBinary) => void this.onMessage(data, isBinary));
    socket.on('close', () => this.unwatch());
    socket.on('error', () => undefined); // a broken socket closes; nothing else to do
  }

  send(message: ServerMessage): void {
    if (this.socket.readyState !== 1) return;
    if (this.socket.bufferedAmount > this.hardCapBytes) {
      this.socket.close(CloseCode.TOO_SLOW, 'too slow: replies are not being read');
      const socket = this.socket;
      setTimeout(() => socket.readyState !== 3 && socket.terminate(), CLOSE_GRACE_MS).unref();
      return;
    }
    this.socket.send(JSON.stringify(message));
  }

  private error(code: Extract<ServerMessage, { type: 'error' }>['code'], message: string, req?: number): void {
    this.metrics.controlErrors.inc({ code });
    this.send({ type: 'error', ...(req === undefined ? {} : { req }), code, message });
  }

  private async onMessage(data: RawData, isBinary: boolean): Promise<void> {
    if (isBinary) return this.error('binary-not-accepted', 'control messages are JSON text frames');
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.error('bad-json', 'not JSON');
    }
    const parsed = controlMessage.safeParse(raw);
    if (!parsed.success) {
      const req = typeof (raw as { req?: unknown })?.req === 'number' ? ((raw as { req: number }).req as number) : undefined;
      return this.error('bad-message', describeProblem(parsed.error), Number.isInteger(req) && req! >= 0 && req! <= 2 ** 31 ? req : undefined);
    }
    try {
      await this.handle(parsed.data);
    } catch (e) {
      this.error('internal', (e as Error)?.message ?? String(e), parsed.data.req);
    }
  }

  private async handle(m: ControlMessage): Promise<void> {
    switch (m.type) {
      case 'ping':
        return this.send({ type: 'pong', req: m.req });
      case 'list':
        return this.send({ type: 'streams', req: m.req, streams: this.control.streams.list() });
      case 'create': {
        const r = await this.control.create({ prompt: m.prompt, overrides: m.overrides, record: m.record });
        if (!r.ok) return this.error(r.code, r.message, m.req);
        this.send({ type: 'created', req: m.req, stream: r.value.info() });
        if (m.watch !== false) this.watch(r.value, m.req);
        return;
      }
      case 'watch': {
        const r = this.control.find(m.stream);
        if (!r.ok) return this.error(r.code, r.message, m.req);
        return this.watch(r.value, m.req);
      }
      case 'unwatch':
        this.unwatch();
        return this.send({ type: 'unwatched', req: m.req });
      case 'prompt': {
        const r = await this.control.prompt(m.stream, m.prompt);
        if (!r.ok) return this.error(r.code, r.message, m.req);
        return this.send({ type: 'ok', req: m.req, op: 'prompt', stream: r.value });
      }
      case 'retune': {
        const r = this.control.retune(m.stream, m.cache);
        if (!r.ok) return this.error(r.code, r.message, m.req);
        return this.send({ type: 'ok', req: m.req, op: 'retune', stream: r.value });
      }
      case 'stop': {
        const r = await this.control.stop(m.stream);
        if (!r.ok) return this.error(r.code, r.message, m.req);
        return this.send({ type: 'ok', req: m.req, op: 'stop', stream: r.value });
      }
    }
  }

  private watch(stream: LiveStream, req?: number): void {
    if (this.watching !== stream) this.unwatch();
    const info = stream.info();
    this.send({ type: 'watching', req, stream: { ...info, viewers: info.viewers + (stream.hub.has(this.socket) ? 0 : 1) } });
    this.watching = stream;
    stream.once('ended', this.onEnded);
    stream.hub.add(this.socket);
  }

  private unwatch(): void {
    if (!this.watching) return;
    this.watching.hub.remove(this.socket);
    this.watching.off('ended', this.onEnded);
    this.watching = null;
  }
}
