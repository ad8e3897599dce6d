/**
 * GET /openapi.json: the HTTP API's contract (OpenAPI 3.1), generated from the route table the server
 * validates requests with (api-v1.ts): path parameters, query, bodies and responses are the routes'
 * own zod schemas as JSON Schema (draft 2020-12, OpenAPI 3.1's dialect).
 */
import { z } from 'zod';
import type { AnyRoute } from './api-router.js';

type JsonObject = Record<string, unknown>;

/** A schema as JSON Schema: the request's input side (defaults make a key optional) or the response's output side. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonObject;
  return rest;
}

const errorSchema = z
  .object({ error: z.object({ code: z.string().describe('a stable code, e.g. not-found, over-capacity, draining, invalid-config'), message: z.string() }) })
  .describe('an error');

const ERROR_TEXT: Record<number, string> = {
  400: 'the request does not match the schema (the message names the field), or the settings are invalid',
  401: "missing or wrong token (send 'Authorization: Bearer <token>')",
  404: 'no such stream, job or file on this instance',
  405: 'the path exists with another method (see Allow)',
  413: 'the body is over serve.maxMessageBytes',
  415: 'the body is not application/json',
  429: 'too many: the render queue is full (serve.maxQueuedRenderJobs)',
  500: 'the server failed',
  503: 'this instance cannot take it now: full (serve.maxStreams), the scheduler refused it (over-capacity), or draining',
};

/** The path template's parameters as OpenAPI parameter objects. */
function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonObject[] {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input');
  const props = (s.properties ?? {}) as Record<string, JsonObject>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
    schema: p,
  }));
}

export interface OpenApiInfo {
  version: string;
  /** Whether requests need the token (documented as the bearer security scheme). */
  tokenRequired: boolean;
}

export function openApiDocument(routes: readonly AnyRoute[], info: OpenApiInfo): JsonObject {
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const r of routes) {
    const responses: Record<string, JsonObject> = {};
    for (const [status, spec] of Object.entries(r.responses)) {
      responses[status] = spec.contentType
        ? { description: spec.description, content: { [spec.contentType]: { schema: { type: 'string', contentMediaType: spec.contentType } } } }
        : { description: spec.description, ...(spec.schema ? { content: { 'application/json': { schema: jsonSchema(spec.schema, 'output') } } } : {}) };
    }
    const errors = new Set([400, 401, 500, ...(r.body ? [413, 415] : []), ...(r.errors ?? [])]);
    for (const status of [...errors].sort()) {
      responses[String(status)] = { description: ERROR_TEXT[status] ?? 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    (paths[r.path] ??= {})[r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } } } : {}),
      responses,
    };
  }
  paths['/openapi.json'] = {
    get: {
      operationId: 'getOpenApi',
      summary: 'This document',
      tags: ['meta'],
      security: [],
      responses: { '200': { description: 'the OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'sinkstream',
      version: info.version,
      description:
        'Live streams, render jobs and recordings of one sinkstream instance. Ids start with the instance id ' +
        '(serve.instanceId), so that a load balancer in front of several instances routes every request about ' +
        'a stream or a job to the instance that holds it (docs/deployment.md). Viewers watch over the WebSocket ' +
        'protocol at /ws (src/serve/protocol.ts).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: [
      { name: 'streams', description: 'live streams' },
      { name: 'renders', description: 'render jobs: clips rendered to files' },
      { name: 'recordings', description: 'recordings of live streams' },
      { name: 'meta', description: 'the contract' },
    ],
    paths,
    components: {
      schemas: { Error: jsonSchema(errorSchema, 'output') },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'serve.token or SINKSTREAM_TOKEN (also accepted as X-Sinkstream-Token)' } },
    },
    security: info.tokenRequired ? [{ bearer: [] }] : [],
  };
}
