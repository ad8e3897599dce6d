/**
 * Every refusal is counted at /metrics: connections refused before the WebSocket handshake (token,
 * path) and right after it (protocol version 4001, server full 4029) in
 * sinkstream_refused_connections_total{reason}; refused requests, over WebSocket and HTTP alike
 * (bad bodies, unknown streams, over-capacity), in sinkstream_control_errors_total{code}.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CostModel } from '../../scheduler/cost-model.js';
import { httpJson, startTestServer, TestClient } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';

const TOKEN = 'refusals-token-1';

/** A device on which a forward takes 1 s: no 16 fps stream fits. */
async function slowDevice() {
  const zero = { perItemMs: 0, perTokenMs: 0, perTokenKeyMs: 0, decodeOverheadMs: 0, decodePerLatentFrameMs: 0, encodeOverheadMs: 0, encodePerLatentFrameMs: 0 };
  return { device: 'slow-device', costModel: new CostModel({ 'slow-device': { overheadMs: 1000, ...zero } }) };
}

function count(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

test('refused connections and requests are each counted, by reason', async () => {
  const server = await startTestServer(
    { serve: { token: TOKEN, maxViewers: 1 }, scheduler: { targetFps: 16 } },
    { scheduling: { calibrate: slowDevice }, createGenerator: async () => new StepsGenerator(5) },
  );
  try {
    await TestClient.connect(server, { token: 'wrong-token-123' }).catch(() => undefined);
    const wrongVersion = await TestClient.connect(server, { token: TOKEN, version: '9' });
    await wrongVersion.closedWith();
    const first = await TestClient.connect(server, { token: TOKEN });
    const second = await TestClient.connect(server, { token: TOKEN });
    assert.is((await second.closedWith()).code, 4029);
    first.send('not json');
    await first.nextOf('error');
    first.send({ type: 'create', prompt: 'a red circle bouncing on a black background', req: 1 });
    assert.is((await first.nextOf('error', 30_000)).code, 'over-capacity');

    assert.is((await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' }, TOKEN)).status, 503);
    assert.is((await httpJson(server, 'GET', '/api/streams/nope', undefined, TOKEN)).status, 404);
    assert.is((await httpJson(server, 'POST', '/api/streams', { nonsense: 1 }, TOKEN)).status, 400);
    assert.is((await httpJson(server, 'GET', '/api/streams')).status, 401);

    const text = await (await fetch(`${server.url}metrics`)).text();
    assert.is(count(text, 'sinkstream_refused_connections_total{reason="token"}'), 1);
    assert.is(count(text, 'sinkstream_refused_connections_total{reason="protocol-version"}'), 1);
    assert.is(count(text, 'sinkstream_refused_connections_total{reason="server-full"}'), 1);
    assert.is(count(text, 'sinkstream_control_errors_total{code="bad-json"}'), 1);
    assert.is(count(text, 'sinkstream_control_errors_total{code="over-capacity"}'), 2, 'WebSocket and HTTP');
    assert.is(count(text, 'sinkstream_control_errors_total{code="not-found"}'), 1);
    assert.is(count(text, 'sinkstream_control_errors_total{code="bad-message"}'), 1);
    assert.is(count(text, 'sinkstream_control_errors_total{code="unauthorized"}'), 1);
    first.close();
  } finally {
    await server.close();
  }
});

test.run();
