/**
 * A small table-driven HTTP router for the JSON API. Each route names its method, a path template
 * (`/v1/streams/{id}`), zod schemas for its path parameters, query and body, and its responses; the
 * router matches, validates (400 naming the field, 413, 415), calls the handler and writes its reply.
 * The same table is what the OpenAPI document is generated from (openapi.ts), so the contract and
 * the validation cannot drift apart.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { z } from 'zod';
import { describeProblem, type ProtocolErrorCode } from './protocol.js';

/** A response a route declares: its status and either a JSON body schema or a media type (files). */
export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** A non-JSON body, e.g. `video/mp4`. */
  contentType?: string;
}

export interface RequestContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  req: IncomingMessage;
}

/** What a handler returns: JSON with a status, a file to send, or an error. */
export type Reply =
  | { status: number; json: unknown }
  | { status: 200; file: string; contentType: string; downloadName: string }
  | { error: ProtocolErrorCode; message: string; status?: number };

export interface Route<P = unknown, Q = unknown, B = unknown> {
  method: 'GET' | 'POST' | 'DELETE';
  /** Template with `{name}` segments, e.g. `/v1/streams/{id}/prompt`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Responses besides the errors every route may give (documented once in openapi.ts). */
  responses: Record<number, ResponseSpec>;
  /** Error statuses this route may answer with (documented; 400, 401 and 500 always apply). */
  errors?: number[];
  handle(ctx: RequestContext<P, Q, B>): Promise<Reply> | Reply;
}

/** A route with its types erased, for tables of routes with different schemas. */
export type AnyRoute = Route<any, any, any>;

/** Keeps a route's schemas and handler in step (types inferred from the schemas). */
export function route<P = undefined, Q = undefined, B = undefined>(r: Route<P, Q, B>): AnyRoute {
  return r as AnyRoute;
}

export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Reads a JSON body of at most `limit` bytes; 415 unless it says application/json, 413 past the limit, 400 if not JSON. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\b/i.test(type)) throw new RequestError(415, 'bad-message', `expected Content-Type: application/json, got '${type}'`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new RequestError(413, 'bad-message', `body of ${declared} bytes is over the limit of ${limit} (serve.maxMessageBytes)`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new RequestError(413, 'bad-message', `body is over the limit of ${limit} bytes (serve.maxMessageBytes)`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new RequestError(400, 'bad-json', `body is not JSON: ${(e as Error).message}`);
  }
}

function validate<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new RequestError(400, 'bad-message', `${where}: ${describeProblem(r.error)}`);
  return r.data;
}

interface CompiledRoute {
  route: AnyRoute;
  pattern: RegExp;
  names: string[];
}

function compile(route: AnyRoute): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((seg) => {
      const m = /^\{(\w+)\}$/.exec(seg);
      if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(m[1]);
      return '([^/]+)';
    })
    .join('/');
  return { route, pattern: new RegExp(`^${source}$`), names };
}

export interface RouterOptions {
  maxBodyBytes: number;
  /** Called with the code of every error answer (metrics). */
  refused?: (code: ProtocolErrorCode) => void;
  /** The status each error code gets unless the handler names one. */
  statusOf: (code: ProtocolErrorCode) => number;
}

export class ApiRouter {
  private readonly compiled: CompiledRoute[];

  constructor(
    readonly routes: readonly AnyRoute[],
    private readonly options: RouterOptions,
  ) {
    this.compiled = routes.map(compile);
  }

  /** Whether some route's path matches (any method). */
  matches(pathname: string): boolean {
    return this.compiled.some((c) => c.pattern.test(pathname));
  }

  /** Answers the request: the route's reply, 404 for an unknown path, 405 (with Allow) for a wrong method. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const fail = (code: ProtocolErrorCode, message: string, status = this.options.statusOf(code)): void => {
      this.options.refused?.(code);
      sendJson(res, status, { error: { code, message } });
    };
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const onPath = this.compiled.filter((c) => c.pattern.test(url.pathname));
    if (onPath.length === 0) return fail('not-found', `no such endpoint: ${url.pathname}`);
    const hit = onPath.find((c) => c.route.method === method);
    if (!hit) {
      res.setHeader('allow', [...new Set(onPath.map((c) => c.route.method))].join(', '));
      return fail('bad-message', `${req.method} is not allowed on ${url.pathname}`, 405);
    }
    try {
      const m = hit.pattern.exec(url.pathname)!;
      const rawParams: Record<string, string> = {};
      hit.names.forEach((name, i) => {
        try {
          rawParams[name] = decodeURIComponent(m[i + 1]);
        } catch {
          throw new RequestError(400, 'bad-message', `path parameter ${name} is not valid percent-encoding`);
        }
      });
      const { route } = hit;
      const params = route.params ? validate(route.params, rawParams, 'path') : undefined;
      const query = route.query ? validate(route.query, Object.fromEntries(url.searchParams), 'query') : undefined;
      const body = route.body ? validate(route.body, await readJsonBody(req, this.options.maxBodyBytes), 'body') : undefined;
      const reply = await route.handle({ params, query, body, req });
      if ('error' in reply) return fail(reply.error, reply.message, reply.status);
      if ('file' in reply) return sendFile(req, res, reply.file, reply.contentType, reply.downloadName);
      sendJson(res, reply.status, reply.json);
    } catch (e) {
      if (e instanceof RequestError) return fail(e.code, e.message, e.status);
      return fail('internal', (e as Error).message);
    }
  }
}

/** Streams a file (404 if it vanished meanwhile). */
function sendFile(req: IncomingMessage, res: ServerResponse, file: string, contentType: string, downloadName: string): void {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    sendJson(res, 404, { error: { code: 'not-found', message: `${downloadName} is gone` } });
    return;
  }
  res.writeHead(200, {
    'content-type': contentType,
    'content-length': size,
    'content-disposition': `attachment; filename="${downloadName.replace(/[^\w.-]/g, '_')}"`,
    'cache-control': 'no-store',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
