/**
 * The HTTP control API (JSON, token in `Authorization: Bearer <token>`):
 *   GET    /api/streams                 -> 200 {streams}
 *   POST   /api/streams        {prompt, overrides?, record?}  -> 201 {stream}
 *   GET    /api/streams/:id             -> 200 {stream, figures}
 *   POST   /api/streams/:id/prompt  {prompt}   -> 200 {stream}
 *   POST   /api/streams/:id/retune  {cache}    -> 200 {stream}
 *   DELETE /api/streams/:id             -> 200 {stream}   (stops it)
 * Errors: {error: {code, message}} with 400, 401, 404, 405, 413, 415, 429, 500 or 503 (the scheduler
 * refused the stream: `over-capacity`, with its reason). POST bodies must
 * be application/json, which a cross-site form cannot send without a CORS preflight (never granted).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { createBody, describeProblem, promptBody, retuneBody, type ProtocolErrorCode } from './protocol.js';
import type { StreamControl, OpResult } from './stream-control.js';

const STATUS: Record<ProtocolErrorCode, number> = {
  'bad-json': 400,
  'bad-message': 400,
  'binary-not-accepted': 415,
  unauthorized: 401,
  'not-found': 404,
  'stream-limit': 429,
  'over-capacity': 503,
  draining: 503,
  'invalid-config': 400,
  'bad-prompt': 400,
  'stream-failed': 500,
  internal: 500,
};

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function sendError(res: ServerResponse, code: ProtocolErrorCode, message: string, status = STATUS[code]): void {
  sendJson(res, status, { error: { code, message } });
}

class BodyError extends Error {
  constructor(
    readonly status: number,
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\b/i.test(type)) throw new BodyError(415, 'bad-message', `expected Content-Type: application/json, got '${type}'`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new BodyError(413, 'bad-message', `body of ${declared} bytes is over the limit of ${limit} (serve.maxMessageBytes)`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyError(413, 'bad-message', `body is over the limit of ${limit} bytes (serve.maxMessageBytes)`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new BodyError(400, 'bad-json', `body is not JSON: ${(e as Error).message}`);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new BodyError(400, 'bad-message', describeProblem(r.error));
  return r.data;
}

/** Handles /api/...; the caller has already checked the token. `refused` counts every error answer by its code. */
export async function handleApi(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  control: StreamControl,
  maxBodyBytes: number,
  refused: (code: ProtocolErrorCode) => void = () => undefined,
): Promise<void> {
  const fail = (code: ProtocolErrorCode, message: string, status?: number): void => {
    refused(code);
    sendError(res, code, message, status);
  };
  const reply = <T>(res: ServerResponse, r: OpResult<T>, ok: (v: T) => unknown, status = 200): void => {
    if (r.ok) sendJson(res, status, ok(r.value));
    else fail(r.code, r.message);
  };
  const parts = url.pathname.split('/').filter(Boolean); // ['api', 'streams', id?, action?]
  const method = req.method ?? 'GET';
  try {
    if (parts[1] !== 'streams' || parts.length > 4) return fail('not-found', `no such endpoint: ${url.pathname}`);
    const [, , id, action] = parts;
    if (!id) {
      if (method === 'GET') return sendJson(res, 200, { streams: control.streams.list() });
      if (method === 'POST') {
        const body = parse(createBody, await readJson(req, maxBodyBytes));
        const r = await control.create(body);
        return reply(res, r, (s) => ({ stream: s.info() }), 201);
      }
    } else if (!action) {
      if (method === 'GET') {
        const r = control.find(id);
        return reply(res, r, (s) => ({ stream: s.info(), figures: s.figures() }));
      }
      if (method === 'DELETE') return reply(res, await control.stop(id), (s) => ({ stream: s }));
    } else if (method === 'POST' && action === 'prompt') {
      const body = parse(promptBody, await readJson(req, maxBodyBytes));
      return reply(res, await control.prompt(id, body.prompt), (s) => ({ stream: s }));
    } else if (method === 'POST' && action === 'retune') {
      const body = parse(retuneBody, await readJson(req, maxBodyBytes));
      return reply(res, control.retune(id, body.cache), (s) => ({ stream: s }));
    } else {
      return fail('not-found', `no such endpoint: ${method} ${url.pathname}`);
    }
    res.setHeader('allow', !id ? 'GET, POST' : 'GET, DELETE');
    return fail('bad-message', `${method} is not allowed on ${url.pathname}`, 405);
  } catch (e) {
    if (e instanceof BodyError) return fail(e.code, e.message, e.status);
    return fail('internal', (e as Error).message);
  }
}
