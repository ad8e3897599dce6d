/**
 * The /v1 HTTP API against its contract: /openapi.json is a valid OpenAPI 3.1 document (checked by
 * @readme/openapi-parser), every path and method it lists is called here (the last test checks), and
 * requests are validated by the same schemas (400 naming the field, 404, 405 with Allow, 401).
 * Render jobs run end to end over HTTP on the demo model: queued behind serve.maxRenderJobs,
 * progress, the file downloaded is a playable MP4 with the frames asked, cancel keeps a playable
 * partial file. Recordings are listed and downloaded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { validate, compileErrors } from '@readme/openapi-parser';
import { probeVideo, tempDir } from '../encode/helpers.js';
import { startTestServer, TestClient } from './helpers/server-fixture.js';
import type { SinkstreamServer } from '../../src/serve/server.js';

const TOKEN = 'api-v1-test-token';
const dir = tempDir('api-v1');
let server: SinkstreamServer;
let doc: any;

/** Every call made through `call`, as `METHOD /template` once matched against the document's paths. */
const called = new Set<string>();

function templateOf(pathname: string): string | undefined {
  return Object.keys(doc.paths).find((t) => new RegExp(`^${t.replace(/\{\w+\}/g, '[^/]+')}$`).test(pathname));
}

async function call(method: string, url: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; body: any; res: Response; bytes?: Buffer }> {
  const pathname = new URL(url, 'http://x').pathname;
  const t = doc ? templateOf(pathname) : undefined;
  if (t) called.add(`${method} ${t}`);
  const res = await fetch(`http://127.0.0.1:${server.port}${url}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if ((res.headers.get('content-type') ?? '').startsWith('video/mp4')) return { status: res.status, body: null, res, bytes: Buffer.from(await res.arrayBuffer()) };
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, res };
}

test.before(async () => {
  server = await startTestServer(
    {
      serve: {
        token: TOKEN,
        instanceId: 'box-a',
        maxStreams: 2,
        spareGenerators: 0,
        maxRenderJobs: 1,
        recordDir: path.join(dir, 'recordings'),
        renderDir: path.join(dir, 'renders'),
      },
    },
    { scheduling: false },
  );
});

test.after(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('/openapi.json: a valid OpenAPI 3.1 document, served without a token', async () => {
  const r = await call('GET', '/openapi.json', undefined, null);
  assert.is(r.status, 200);
  doc = r.body;
  called.add('GET /openapi.json');
  assert.is(doc.openapi, '3.1.0');
  const result = await validate(structuredClone(doc));
  assert.ok(result.valid, result.valid ? '' : compileErrors(result));
  // The validator does catch a broken document (so the check above can fail).
  const broken = structuredClone(doc);
  broken.paths['/v1/streams'].post.responses = { 201: { content: {} } }; // a response without its description
  assert.is((await validate(broken)).valid, false);
  // The request schemas are the validators': createStream's body is the protocol's createBody.
  const body = doc.paths['/v1/streams'].post.requestBody.content['application/json'].schema;
  assert.equal(body.required, ['prompt']);
  assert.is(body.additionalProperties, false);
});

test('streams: create (id with the instance prefix, viewer URL), list, get, prompt, retune, stop; errors by the schemas', async () => {
  assert.is((await call('GET', '/v1/streams', undefined, null)).status, 401);
  const created = await call('POST', '/v1/streams', { prompt: 'a red circle bouncing on a black background', record: true });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const id: string = created.body.stream.id;
  assert.match(id, /^box-a-[0-9a-f]{10}$/);
  assert.is(created.body.viewerUrl, `http://127.0.0.1:${server.port}/?stream=${id}`);
  const list = await call('GET', '/v1/streams');
  assert.equal(list.body.streams.map((s: any) => s.id), [id]);
  // The legacy path is the same implementation.
  assert.equal((await call('GET', '/api/streams')).body.streams.map((s: any) => s.id), [id]);
  const got = await call('GET', `/v1/streams/${id}`);
  assert.is(got.status, 200);
  assert.is(got.body.stream.id, id);
  assert.type(got.body.figures, 'object');
  const switched = await call('POST', `/v1/streams/${id}/prompt`, { prompt: 'a blue square bouncing on a dark blue background' });
  assert.is(switched.status, 200, JSON.stringify(switched.body));
  const retuned = await call('POST', `/v1/streams/${id}/retune`, { cache: { policy: 'sink', window: 12, sink: 3 } });
  assert.equal(retuned.body.stream.cache, { policy: 'sink', sink: 3, window: 12 });

  const bad = await call('POST', `/v1/streams/${id}/retune`, { cache: { window: 'big' } });
  assert.is(bad.status, 400);
  assert.match(bad.body.error.message, /cache\.window/);
  assert.is((await call('POST', '/v1/streams', { prompt: 'x', nonsense: 1 })).status, 400);
  assert.is((await call('GET', '/v1/streams/NOT_AN_ID')).status, 400);
  assert.is((await call('GET', '/v1/streams/box-a-0000000000')).status, 404);
  assert.is((await call('GET', '/v1/nothing')).status, 404);
  const wrong = await call('PUT', `/v1/streams/${id}`);
  assert.is(wrong.status, 405);
  assert.is(wrong.res.headers.get('allow'), 'GET, DELETE');

  // A viewer watches it until it is stopped.
  const viewer = await TestClient.connect(server, { token: TOKEN });
  viewer.send({ type: 'watch', stream: id, req: 1 });
  await viewer.nextOf('watching');
  await viewer.next((r) => r.kind === 'binary');
  const stopped = await call('DELETE', `/v1/streams/${id}`);
  assert.is(stopped.status, 200);
  assert.is(stopped.body.stream.state, 'ended');
  assert.is((await viewer.nextOf('ended')).stream, id);
  viewer.close();
  assert.is((await call('GET', `/v1/streams/${id}`)).status, 404);
});

test('recordings: listed and downloadable (a playable MP4); names are checked', async () => {
  const list = await call('GET', '/v1/recordings');
  assert.is(list.status, 200);
  const rec = list.body.recordings[0];
  assert.match(rec.name, /^box-a-[0-9a-f]{10}\.mp4$/);
  assert.ok(rec.bytes > 0);
  assert.is(rec.live, false);
  const file = await call('GET', `/v1/recordings/${rec.name}`);
  assert.is(file.status, 200);
  assert.is(file.bytes!.length, rec.bytes);
  const saved = path.join(dir, 'downloaded-recording.mp4');
  fs.writeFileSync(saved, file.bytes!);
  assert.ok((await probeVideo(saved)).frames > 0);
  assert.is((await call('GET', '/v1/recordings/box-a-0000000000.mp4')).status, 404);
  assert.is((await call('GET', '/v1/recordings/..%2Fsecret.mp4')).status, 400);
});

test('render jobs over HTTP: queued behind serve.maxRenderJobs, progress, the file with the frames asked; cancel keeps a playable partial file', async () => {
  const first = await call('POST', '/v1/renders', { prompt: 'a red circle bouncing on a black background', frames: 9, set: ['generation.seed=3'] });
  assert.is(first.status, 202, JSON.stringify(first.body));
  const long = await call('POST', '/v1/renders', { frames: 600 });
  assert.is(long.status, 202);
  const id: string = first.body.job.id;
  assert.match(id, /^box-a-[0-9a-f]{10}$/);
  assert.is(long.body.job.state, 'queued', 'one render at a time (serve.maxRenderJobs 1)');
  assert.is(long.body.job.queuePosition, 1);
  assert.is((await call('GET', `/v1/renders/${id}/file`)).status, 404, 'no file before it is done');

  const seen: number[] = [];
  let job: any;
  const deadline = Date.now() + 60_000;
  for (;;) {
    job = (await call('GET', `/v1/renders/${id}`)).body.job;
    seen.push(job.framesWritten);
    if (job.state === 'done' || job.state === 'failed' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.is(job.state, 'done', JSON.stringify(job));
  assert.is(job.framesInFile, 9);
  assert.is(job.progress, 1);
  assert.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]), 'progress never goes back');
  assert.ok((await call('GET', '/v1/renders')).body.jobs.some((j: any) => j.id === id));
  const file = await call('GET', `/v1/renders/${id}/file`);
  assert.is(file.status, 200);
  const saved = path.join(dir, 'render.mp4');
  fs.writeFileSync(saved, file.bytes!);
  const probed = await probeVideo(saved);
  assert.is(probed.frames, 9);
  assert.is(probed.width, job.width);

  // The long job starts once the first is done; cancel it after a few frames.
  const longId: string = long.body.job.id;
  let running: any;
  const until = Date.now() + 60_000;
  for (;;) {
    running = (await call('GET', `/v1/renders/${longId}`)).body.job;
    if (running.framesWritten >= 3 || Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.is(running.state, 'running');
  const cancelled = await call('DELETE', `/v1/renders/${longId}`);
  assert.is(cancelled.status, 200);
  assert.is(cancelled.body.job.state, 'cancelled');
  assert.ok(cancelled.body.job.framesInFile > 0 && cancelled.body.job.framesInFile < 600);
  const partial = await call('GET', `/v1/renders/${longId}/file`);
  assert.is(partial.status, 200);
  const partialPath = path.join(dir, 'partial.mp4');
  fs.writeFileSync(partialPath, partial.bytes!);
  assert.is((await probeVideo(partialPath)).frames, cancelled.body.job.framesInFile);

  const refused = await call('POST', '/v1/renders', { set: ['engine.provider=webgpu'] });
  assert.is(refused.status, 400);
  assert.is(refused.body.error.code, 'invalid-config');
  assert.is((await call('POST', '/v1/renders', { frames: 3, seconds: 1 })).status, 400);
  assert.is((await call('GET', '/v1/renders/box-a-0000000000')).status, 404);
});

test('every path and method in /openapi.json was called by these tests', () => {
  const listed = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${p}`));
  const missing = listed.filter((op) => !called.has(op));
  assert.equal(missing, [], `not exercised: ${missing.join(', ')}`);
  assert.ok(listed.length >= 14);
});

test.run();
