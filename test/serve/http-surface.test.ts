/**
 * What the server answers outside the API: a page load asks for nothing that is not there (no
 * favicon 404), a known path with the wrong method gets 405 with `Allow`, and what clients are told
 * about a recording names no folder of the server.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../encode/helpers.js';
import { StepsGenerator } from './helpers/steps-generator.js';
import { TestClient, httpJson, startTestServer } from './helpers/server-fixture.js';

const fake = { scheduling: false as const, createGenerator: async () => new StepsGenerator(5) };

test('the page declares no icon and /favicon.ico is not a 404', async () => {
  const server = await startTestServer({}, fake);
  try {
    const page = await (await fetch(server.url)).text();
    assert.match(page, /<link rel="icon" href="data:,">/);
    const icon = await fetch(`${server.url}favicon.ico`);
    assert.is(icon.status, 204);
  } finally {
    await server.close();
  }
});

test('a known path with the wrong method: 405 with Allow; an unknown path: 404', async () => {
  const server = await startTestServer({}, fake);
  try {
    for (const [method, path] of [['POST', '/'], ['PUT', '/index.html'], ['DELETE', '/viewer.js'], ['POST', '/metrics'], ['POST', '/favicon.ico']]) {
      const r = await fetch(`${server.url}${path.slice(1)}`, { method });
      assert.is(r.status, 405, `${method} ${path}`);
      assert.is(r.headers.get('allow'), 'GET, HEAD', `${method} ${path}`);
      const body = (await r.json()) as { error: { message: string } };
      assert.match(body.error.message, new RegExp(`${method} is not allowed on ${path.replace('.', '\\.')}`));
    }
    assert.is((await fetch(`${server.url}nothing-here`, { method: 'POST' })).status, 404);
    assert.is((await fetch(`${server.url}nothing-here`)).status, 404);
    assert.is((await fetch(server.url, { method: 'HEAD' })).status, 200);
  } finally {
    await server.close();
  }
});

test("a recording stream's info gives the file's name, never the server's folders", async () => {
  const dir = tempDir('record-name');
  const server = await startTestServer({ serve: { recordDir: dir } }, fake);
  try {
    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background', record: true });
    assert.is(created.status, 201, JSON.stringify(created.body));
    const id = created.body.stream.id as string;
    assert.is(created.body.stream.recording, `${id}.mp4`);
    assert.is(created.body.stream.records, true);
    const client = await TestClient.connect(server);
    const hello = await client.nextOf('hello');
    const everything = JSON.stringify([created.body, (await httpJson(server, 'GET', '/api/streams')).body, (await httpJson(server, 'GET', `/api/streams/${id}`)).body, hello]);
    assert.not.ok(everything.includes(dir), `the record folder ${dir} is shown to clients: ${everything}`);
    client.close();
  } finally {
    await server.close();
  }
});

test.run();
