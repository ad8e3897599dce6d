/**
 * One owner of a live stream's configuration (LiveStream): a retune through the HTTP API and through
 * the WebSocket protocol lay the same patch over the stream's config the same way, validate the
 * whole, and hand the generator the same complete cache section; a refused retune changes nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Config } from '../../src/config/schema.js';
import type { SinkstreamServer } from '../../src/serve/server.js';
import { StepsGenerator } from './helpers/steps-generator.js';
import { startTestServer, testConfig, TestClient } from './helpers/server-fixture.js';

const TOKEN = 'retune-test-token';

class RecordingGenerator extends StepsGenerator {
  readonly retunes: Array<Config['cache']> = [];
  override retune(cache: Config['cache']): void {
    this.retunes.push(structuredClone(cache));
  }
}

const patch = { window: 9, participative: { budget: 8 } };

async function createStream(server: SinkstreamServer, client: TestClient, req: number): Promise<string> {
  client.send({ type: 'create', prompt: 'a red circle', req, overrides: { cache: { sink: 2 } } });
  return (await client.nextOf('created', 30_000)).stream.id;
}

test('a retune through the API and through the WebSocket give the generator the same complete cache section', async () => {
  const generators: RecordingGenerator[] = [];
  const server = await startTestServer(
    { serve: { token: TOKEN, maxStreams: 2 } },
    {
      scheduling: false,
      createGenerator: async () => {
        const g = new RecordingGenerator();
        generators.push(g);
        return g;
      },
    },
  );
  try {
    const client = await TestClient.connect(server, { token: TOKEN });
    const viaWs = await createStream(server, client, 1);
    const viaApi = await createStream(server, client, 2);

    client.send({ type: 'retune', req: 3, stream: viaWs, cache: patch });
    const ok = await client.nextOf('ok', 30_000);
    assert.is(ok.op, 'retune');
    const res = await fetch(`${server.url}v1/streams/${viaApi}/retune`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ cache: patch }),
    });
    assert.is(res.status, 200, await res.clone().text());

    const base = testConfig().cache;
    const expected: Config['cache'] = { ...base, sink: 2, window: 9, participative: { ...base.participative, budget: 8 } };
    assert.equal(generators.map((g) => g.retunes), [[expected], [expected]]);

    // An impossible combination is refused before the generator hears of it, both ways.
    const bad = { policy: 'sink' as const, sink: 9 }; // window 9 leaves no room for the block
    client.send({ type: 'retune', req: 4, stream: viaWs, cache: bad });
    const refused = await client.nextOf('error', 30_000);
    assert.match(refused.message, /cache/);
    const badRes = await fetch(`${server.url}v1/streams/${viaApi}/retune`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ cache: bad }),
    });
    assert.is(badRes.status, 400);
    assert.equal(generators.map((g) => g.retunes.length), [1, 1]);
    client.close();
  } finally {
    await server.close();
  }
});

test.run();
