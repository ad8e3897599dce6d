/**
 * The HAProxy agent port: the free share of serve.maxStreams as a weight while ready, `drain` when
 * not (full, starting, draining); and the default instance id made from the host name and port.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { agentReply, CapacityAgent } from '../../src/serve/capacity-agent.js';
import { defaultInstanceId } from '../../src/serve/instance-id.js';
import { readiness, type ReadinessState } from '../../src/serve/readiness.js';

const state = (over: Partial<ReadinessState>): ReadinessState => ({ draining: false, warm: true, streams: 0, maxStreams: 4, ...over });

test('agent replies: free capacity as a weight, drain when not admitting', () => {
  assert.is(agentReply(readiness(state({ streams: 0 }))), 'ready 100%\n');
  assert.is(agentReply(readiness(state({ streams: 1 }))), 'ready 75%\n');
  assert.is(agentReply(readiness(state({ streams: 3 }))), 'ready 25%\n');
  assert.is(agentReply(readiness(state({ streams: 4 }))), 'drain\n');
  assert.is(agentReply(readiness(state({ warm: false }))), 'drain\n');
  assert.is(agentReply(readiness(state({ draining: true }))), 'drain\n');
});

test('the agent port answers each connection with one line and closes', async () => {
  let streams = 1;
  const agent = await CapacityAgent.listen('127.0.0.1', 0, () => readiness(state({ streams })));
  const ask = () =>
    new Promise<string>((resolve, reject) => {
      let text = '';
      net
        .connect(agent.port, '127.0.0.1')
        .on('data', (c) => (text += c.toString()))
        .on('end', () => resolve(text))
        .on('error', reject);
    });
  try {
    assert.is(await ask(), 'ready 75%\n');
    streams = 4;
    assert.is(await ask(), 'drain\n');
  } finally {
    await agent.close();
  }
});

test('default instance id: host name and port as an id of at most 24 characters', () => {
  assert.is(defaultInstanceId('GPU-Host.local', 8080), 'gpu-host-local-8080');
  assert.is(defaultInstanceId('a'.repeat(60), 8080), `${'a'.repeat(19)}-8080`);
  assert.is(defaultInstanceId('---', 80), 'sinkstream-80');
  for (const id of [defaultInstanceId('GPU-Host.local', 8080), defaultInstanceId('x'.repeat(40), 65535)]) {
    assert.ok(/^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$/.test(id), id);
  }
});

test.run();
