/**
 * The HTTP API's routes, one table (api-router.ts validates each request against its schemas and
 * openapi.ts documents the same table at /openapi.json):
 *
 *   /v1/streams ...     live streams: create (id and viewer URL), list, get, stop, switch prompt, retune
 *   /v1/renders ...     render jobs: create, list, progress, download the file, cancel
 *   /v1/recordings ...  recordings of live streams: list, download
 *
 * The stream routes are also mounted at /api/streams (the viewer page's and earlier clients' path):
 * one implementation (StreamControl, shared with the WebSocket protocol) behind both.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { route, type AnyRoute, type Reply, type ResponseSpec } from './api-router.js';
import { createBody, promptBody, retuneBody, type StreamInfo } from './protocol.js';
import type { OpResult, StreamControl } from './stream-control.js';
import type { RenderJobInfo, RenderJobs } from './render-jobs.js';

// ---- schemas ------------------------------------------------------------------------------------

const id = z.string().regex(/^[a-z0-9-]{1,40}$/).describe('an id: lowercase letters, digits, dashes; it starts with the instance id (serve.instanceId) that holds it');
export const idParams = z.object({ id }).strict();

const cacheView = z.object({ policy: z.string(), sink: z.number().int(), window: z.number().int() });
export const streamInfoSchema = z
  .object({
    id: z.string(),
    prompt: z.string(),
    state: z.enum(['starting', 'running', 'stopping', 'ended', 'failed']),
    width: z.number().int(),
    height: z.number().int(),
    fps: z.number(),
    viewers: z.number().int(),
    recording: z.string().nullable().describe("the recording's file name (GET /v1/recordings/{name}), or null"),
    records: z.boolean(),
    idleStop: z.union([
      z.object({ pending: z.literal(true), at: z.string(), inSeconds: z.number() }),
      z.object({ pending: z.literal(false), reason: z.enum(['watched', 'recording', 'disabled', 'stopped']) }),
    ]),
    cache: cacheView,
    createdAt: z.string(),
  })
  .describe('a live stream');
// The schema documents StreamInfo: the two must agree (a compile error here says they do not).
const _streamInfoMatches: z.infer<typeof streamInfoSchema> = {} as StreamInfo;
void _streamInfoMatches;

export const renderRequestSchema = z
  .object({
    prompt: z.string().trim().min(1).max(1000).optional().describe('default: generation.prompt'),
    set: z
      .array(z.string().max(200))
      .max(32)
      .optional()
      .describe("configuration settings as `sinkstream render --set` takes them, e.g. 'cache.window=15'; generation.*, cache.* and output.crf / preset / keyframeSeconds only"),
    frames: z.number().int().positive().optional().describe('length in frames'),
    seconds: z.number().positive().optional().describe('length in seconds of video (default output.seconds)'),
  })
  .strict()
  .refine((r) => r.frames === undefined || r.seconds === undefined, { message: 'give frames or seconds, not both', path: ['seconds'] });

export const renderJobSchema = z
  .object({
    id: z.string(),
    state: z.enum(['queued', 'running', 'done', 'cancelled', 'failed']),
    prompt: z.string(),
    framesRequested: z.number().int(),
    framesWritten: z.number().int(),
    progress: z.number().min(0).max(1),
    queuePosition: z.number().int(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    fps: z.number(),
    framesInFile: z.number().int().nullable(),
    bytes: z.number().int().nullable(),
    fileReady: z.boolean(),
    error: z.string().nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    expiresAt: z.string().nullable(),
  })
  .describe('a render job');
const _renderJobMatches: z.infer<typeof renderJobSchema> = {} as RenderJobInfo;
void _renderJobMatches;

export const recordingName = z.string().regex(/^[a-z0-9-]{1,40}\.mp4$/).describe("a recording's file name, <stream id>.mp4");
export const recordingSchema = z.object({
  name: z.string(),
  bytes: z.number().int(),
  modifiedAt: z.string(),
  live: z.boolean().describe('the stream is still recording to it (a fragmented MP4: what is there plays)'),
});

const figuresSchema = z.record(z.string(), z.unknown()).describe("the stream's figures (as the WebSocket `stats` message carries them)");

// ---- helpers ------------------------------------------------------------------------------------

function ok<T>(r: OpResult<T>, body: (v: T) => unknown, status = 200): Reply {
  return r.ok ? { status, json: body(r.value) } : { error: r.code, message: r.message };
}

/** The page that shows a stream, as the client reached this server (through a balancer: its address). */
export function viewerUrl(req: IncomingMessage, streamId: string): string {
  const forwarded = req.headers['x-forwarded-proto'];
  const proto = typeof forwarded === 'string' && /^https?$/.test(forwarded) ? forwarded : 'http';
  const host = typeof req.headers.host === 'string' ? req.headers.host : 'localhost';
  return `${proto}://${host}/?stream=${encodeURIComponent(streamId)}`;
}

const json = (description: string, schema: z.ZodType): ResponseSpec => ({ description, schema });
const streamReply = z.object({ stream: streamInfoSchema });

// ---- routes -------------------------------------------------------------------------------------

/** The live-stream routes under `prefix` (`/v1` or `/api`). */
export function streamRoutes(prefix: string, control: StreamControl): AnyRoute[] {
  const base = `${prefix}/streams`;
  const op = (name: string) => (prefix === '/v1' ? name : `${name}Legacy`);
  return [
    route({
      method: 'GET',
      path: base,
      operationId: op('listStreams'),
      summary: "List this instance's live streams",
      tag: 'streams',
      responses: { 200: json('the streams', z.object({ streams: z.array(streamInfoSchema) })) },
      handle: () => ({ status: 200, json: { streams: control.streams.list() } }),
    }),
    route({
      method: 'POST',
      path: base,
      operationId: op('createStream'),
      summary: 'Create a live stream',
      tag: 'streams',
      body: createBody,
      responses: { 201: json('created: its id and the page that shows it', z.object({ stream: streamInfoSchema, viewerUrl: z.string() })) },
      errors: [429, 503],
      handle: async ({ body, req }) => ok(await control.create(body), (s) => ({ stream: s.info(), viewerUrl: viewerUrl(req, s.id) }), 201),
    }),
    route({
      method: 'GET',
      path: `${base}/{id}`,
      operationId: op('getStream'),
      summary: 'A live stream and its figures',
      tag: 'streams',
      params: idParams,
      responses: { 200: json('the stream', z.object({ stream: streamInfoSchema, figures: figuresSchema })) },
      errors: [404],
      handle: ({ params }) => ok(control.find(params.id), (s) => ({ stream: s.info(), figures: s.figures() })),
    }),
    route({
      method: 'DELETE',
      path: `${base}/{id}`,
      operationId: op('stopStream'),
      summary: 'Stop a live stream (viewers get its last fragments, its recording is finished)',
      tag: 'streams',
      params: idParams,
      responses: { 200: json('stopped', streamReply) },
      errors: [404],
      handle: async ({ params }) => ok(await control.stop(params.id), (s) => ({ stream: s })),
    }),
    route({
      method: 'POST',
      path: `${base}/{id}/prompt`,
      operationId: op('switchPrompt'),
      summary: "Switch a stream's prompt (takes effect at the next block once the prompt is encoded)",
      tag: 'streams',
      params: idParams,
      body: promptBody,
      responses: { 200: json('switched', streamReply) },
      errors: [404],
      handle: async ({ params, body }) => ok(await control.prompt(params.id, body.prompt), (s) => ({ stream: s })),
    }),
    route({
      method: 'POST',
      path: `${base}/{id}/retune`,
      operationId: op('retuneStream'),
      summary: "Retune a stream's KV cache (policy, sink, window, ...) from its next block",
      tag: 'streams',
      params: idParams,
      body: retuneBody,
      responses: { 200: json('retuned', streamReply) },
      errors: [404],
      handle: ({ params, body }) => ok(control.retune(params.id, body.cache), (s) => ({ stream: s })),
    }),
  ];
}

export function renderRoutes(renders: RenderJobs): AnyRoute[] {
  const jobReply = z.object({ job: renderJobSchema });
  return [
    route({
      method: 'POST',
      path: '/v1/renders',
      operationId: 'createRender',
      summary: 'Queue a render job: a clip rendered to an MP4 file with the given settings',
      tag: 'renders',
      body: renderRequestSchema,
      responses: { 202: json('queued (or started): poll GET /v1/renders/{id}', jobReply) },
      errors: [429, 503],
      handle: ({ body }) => {
        const r = renders.submit(body);
        if (r.ok) return { status: 202, json: { job: r.value } };
        // A full queue is this client's to retry later (429); draining is the instance's (503).
        return { error: r.code, message: r.message, ...(r.code === 'stream-limit' ? { status: 429 } : {}) };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/renders',
      operationId: 'listRenders',
      summary: "This instance's render jobs (ended ones until they are forgotten: serve.renderJobTtlSeconds)",
      tag: 'renders',
      responses: { 200: json('the jobs', z.object({ jobs: z.array(renderJobSchema) })) },
      handle: () => ({ status: 200, json: { jobs: renders.list() } }),
    }),
    route({
      method: 'GET',
      path: '/v1/renders/{id}',
      operationId: 'getRender',
      summary: "A render job's state and progress",
      tag: 'renders',
      params: idParams,
      responses: { 200: json('the job', jobReply) },
      errors: [404],
      handle: ({ params }) => ok(renders.get(params.id), (job) => ({ job })),
    }),
    route({
      method: 'DELETE',
      path: '/v1/renders/{id}',
      operationId: 'cancelRender',
      summary: 'Cancel a render job: a queued one never starts; a running one stops and its partial file stays playable and downloadable',
      tag: 'renders',
      params: idParams,
      responses: { 200: json('cancelled (or already ended: then unchanged)', jobReply) },
      errors: [404],
      handle: async ({ params }) => ok(await renders.cancel(params.id), (job) => ({ job })),
    }),
    route({
      method: 'GET',
      path: '/v1/renders/{id}/file',
      operationId: 'downloadRender',
      summary: "A render job's MP4 file (once done; or what a cancelled or failed job wrote)",
      tag: 'renders',
      params: idParams,
      responses: { 200: { description: 'the clip', contentType: 'video/mp4' } },
      errors: [404],
      handle: ({ params }) => {
        const r = renders.file(params.id);
        return r.ok ? { status: 200, file: r.value.path, contentType: 'video/mp4', downloadName: r.value.name } : { error: r.code, message: r.message };
      },
    }),
  ];
}

export function recordingRoutes(recordDir: string, control: StreamControl): AnyRoute[] {
  const dir = () => path.resolve(recordDir);
  return [
    route({
      method: 'GET',
      path: '/v1/recordings',
      operationId: 'listRecordings',
      summary: "Recordings in this instance's serve.recordDir",
      tag: 'recordings',
      responses: { 200: json('the recordings, newest first', z.object({ recordings: z.array(recordingSchema) })) },
      handle: () => {
        let names: string[] = [];
        try {
          names = fs.readdirSync(dir()).filter((n) => recordingName.safeParse(n).success);
        } catch {
          names = []; // no recording yet: the folder is made by the first one
        }
        const live = new Set(control.streams.list().filter((s) => s.records && s.state !== 'ended').map((s) => s.recording));
        const recordings = names
          .flatMap((name) => {
            try {
              const st = fs.statSync(path.join(dir(), name));
              return st.isFile() ? [{ name, bytes: st.size, modifiedAt: st.mtime.toISOString(), live: live.has(name), t: st.mtimeMs }] : [];
            } catch {
              return [];
            }
          })
          .sort((a, b) => b.t - a.t)
          .map(({ t: _t, ...r }) => r);
        return { status: 200, json: { recordings } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/recordings/{name}',
      operationId: 'downloadRecording',
      summary: 'Download a recording (a live one: what it holds so far, playable)',
      tag: 'recordings',
      params: z.object({ name: recordingName }).strict(),
      responses: { 200: { description: 'the recording', contentType: 'video/mp4' } },
      errors: [404],
      handle: ({ params }) => {
        const file = path.join(dir(), params.name);
        if (!fs.existsSync(file)) return { error: 'not-found', message: `no recording '${params.name}'` };
        return { status: 200, file, contentType: 'video/mp4', downloadName: params.name };
      },
    }),
  ];
}
