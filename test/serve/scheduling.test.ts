/**
 * The server through the block scheduler: a stream the scheduler cannot keep is refused with its
 * reason (HTTP 503, WebSocket error `over-capacity`); blocks run at the steps the ladder chooses
 * (full steps with capacity, fewer when the device slows down); the scheduler's figures reach
 * viewers and /metrics; a stopped stream leaves the scheduler. The last test runs the real default
 * model, calibrated on this machine.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { SinkstreamServer } from '../../src/serve/server.js';
import { fixedForwardCalibration, httpJson, startTestServer, TestClient } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';

/** Every forward takes `forwardMs`, the rest of a block nothing. */
function calibration(forwardMs: number) {
  return async () => fixedForwardCalibration(forwardMs);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

test('a stream the scheduler cannot keep is refused with its reason: HTTP 503 and a WebSocket error', async () => {
  // 400 ms a forward: even at 2 steps a 3-frame block needs 1.2 s, and 3 frames last 0.75 s at 4 fps.
  const generators: StepsGenerator[] = [];
  const server = await startTestServer({}, { scheduling: { calibrate: calibration(400) }, createGenerator: async () => (generators.push(new StepsGenerator()), generators.at(-1)!) });
  try {
    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' });
    assert.is(created.status, 503, JSON.stringify(created.body));
    assert.is(created.body.error.code, 'over-capacity');
    assert.match(created.body.error.message, /the scheduler refused the stream/);
    assert.match(created.body.error.message, /needs 1\.60 of the device, 0\.90 allowed with 1 stream at the lowest rung/);
    const client = await TestClient.connect(server);
    client.send({ type: 'create', prompt: 'a red circle bouncing on a black background', req: 5 });
    const err = await client.nextOf('error');
    assert.is(err.req, 5);
    assert.is(err.code, 'over-capacity');
    assert.match(err.message, /4 fps, TTFF 2000 ms, latency 2500 ms/);
    client.close();
    assert.equal(server.streams.list(), []);
    // The first refusal is the scheduler's verdict on a started generator (closed again); from then on
    // the scheduler is asked before a generator is started, so the second refusal started none.
    assert.ok(generators.length === 1 && generators.every((g) => g.closed), `generators started ${generators.length}, all closed`);
    assert.match(await metricsText(server.port), /sinkstream_scheduler_decisions_total\{kind="refused"\} 2/);
  } finally {
    await server.close();
  }
});

test('blocks run at full steps with capacity; when the device slows down the ladder lowers steps, and it shows in the figures and /metrics', async () => {
  const gen = new StepsGenerator(10);
  // the costs below are worked out for an 8-step opening and 4 steps a block
  const generation = { steps: [1000, 750, 500, 250], openingSteps: [1000, 875, 750, 625, 500, 375, 250, 125] };
  const server = await startTestServer(
    { scheduler: { targetFps: 12 }, generation },
    { scheduling: { calibrate: calibration(10) }, createGenerator: async () => gen },
  );
  try {
    const client = await TestClient.connect(server);
    client.send({ type: 'create', prompt: 'a red circle bouncing on a black background', req: 1 });
    const id = (await client.nextOf('created')).stream.id;
    // 3 frames every 250 ms, 50 ms a block at 4 steps: room to spare.
    while (gen.steps.length < 8) await sleep(50);
    // The first block opens at generation.openingSteps' 8, the scheduler scaling it; the rest at 4.
    assert.ok(gen.steps.every((s, i) => s === (i === 0 ? 8 : 4)), `steps ${gen.steps}`);
    // Five times slower: 4 steps would need all of the device.
    gen.slowdown = 5;
    const from = gen.steps.length;
    const deadline = Date.now() + 15_000;
    while (!gen.steps.slice(from).some((s) => s < 4) && Date.now() < deadline) await sleep(50);
    const lowered = gen.steps.slice(from).filter((s) => s < 4);
    assert.ok(lowered.length > 0, `steps after the slowdown: ${gen.steps.slice(from)}`);
    let stats = (await client.nextOf('stats')).figures;
    while (stats.scheduler!.steps === 4) stats = (await client.nextOf('stats')).figures;
    assert.ok(stats.scheduler!.steps < 4);
    assert.ok(stats.scheduler!.decisions.some((d) => d.kind === 'lowered'), JSON.stringify(stats.scheduler!.decisions));
    const text = await metricsText(server.port);
    assert.match(text, new RegExp(`sinkstream_scheduler_steps\\{stream="${id}"\\} [23]`));
    assert.match(text, /sinkstream_scheduler_decisions_total\{kind="lowered"\} [1-9]/);
    assert.match(text, /sinkstream_blocks_total\{steps="4"\} [1-9]/);
    client.close();
  } finally {
    await server.close();
  }
});

test('by default the objective is the video\'s own rate (generation.fps, 16): admission decides how many streams fit, fewer on a slower device', async () => {
  const config = loadConfig({ overrides: { serve: { port: 0, maxStreams: 8 } } });
  assert.is(config.scheduler.targetFps, undefined, 'configs/default.yaml sets no other objective');
  // 16 fps, 3-frame blocks: a block every 187.5 ms. At the lowest rung (2 steps = 3 forwards) a stream
  // needs 30 ms of it with 10 ms forwards (0.16 of the device: 5 fit under 0.9), 60 ms with 20 ms (2 fit).
  for (const [forwardMs, fit] of [
    [10, 5],
    [20, 2],
  ] as const) {
    const server = await SinkstreamServer.listen({ config, env: {}, scheduling: { calibrate: calibration(forwardMs) }, createGenerator: async () => new StepsGenerator(forwardMs) });
    try {
      const admitted: Array<{ id: string; fps: number }> = [];
      let refused: { status: number; body: any } | null = null;
      while (admitted.length < 8 && !refused) {
        const r = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' });
        if (r.status === 201) admitted.push(r.body.stream);
        else refused = r;
      }
      assert.is(admitted.length, fit, `forwards of ${forwardMs} ms`);
      assert.ok(admitted.every((s) => s.fps === 16), 'streams play out at generation.fps');
      assert.is(refused?.status, 503);
      assert.match(refused?.body.error.message, /16 fps, TTFF 2000 ms/);
      const figures = (await httpJson(server, 'GET', `/api/streams/${admitted[0].id}`)).body.figures;
      assert.is(figures.scheduler.targetFps, 16);
    } finally {
      await server.close();
    }
  }
});

test('the real default model through serve: admitted by the measured calibration, scheduler figures at /metrics and to viewers; stopping leaves the scheduler', async () => {
  const server = await startTestServer();
  try {
    const client = await TestClient.connect(server);
    client.send({ type: 'create', prompt: 'a red circle bouncing on a black background', req: 1 });
    const created = await client.nextOf('created', 60_000);
    const id = created.stream.id;
    assert.is(created.stream.fps, 4, 'a scheduled stream plays out at scheduler.targetFps');
    let figures = (await client.nextOf('stats', 30_000)).figures;
    while (figures.framesDelivered < 12) figures = (await client.nextOf('stats', 30_000)).figures;
    const s = figures.scheduler!;
    assert.is(s.device, 'ort-cpu');
    const fullSteps = loadConfig().generation.steps.length;
    assert.is(s.fullSteps, fullSteps);
    assert.ok(s.steps >= 2 && s.steps <= fullSteps);
    assert.ok(s.plannedDelayMs > 0);
    assert.ok(figures.ttffMs !== null && figures.ttffMs > 0, `TTFF ${figures.ttffMs}`);
    assert.equal(Object.keys(s).filter((k) => /ttff|latency|jitter|miss|delivered/i.test(k)), [], 'the playout figures are the stream\'s (its ledger), not the scheduler\'s');
    assert.is(s.decisions[0].kind, 'admitted');
    const text = await metricsText(server.port);
    for (const line of [
      `sinkstream_scheduler_steps{stream="${id}"}`,
      `sinkstream_scheduler_planned_delay_seconds{stream="${id}"}`,
      'sinkstream_scheduler_decisions_total{kind="admitted"} 1',
      'sinkstream_scheduler_device_streams{device="ort-cpu"} 1',
      'sinkstream_scheduler_device_speed_ratio{device="ort-cpu"}',
      // ONNX Runtime's streams are never batched: one block a job
      'sinkstream_scheduler_device_blocks_per_job{device="ort-cpu"} 1',
    ]) {
      assert.ok(text.includes(line), `missing ${line}`);
    }
    client.send({ type: 'stop', stream: id, req: 2 });
    await client.nextOf('ended', 30_000);
    const after = await metricsText(server.port);
    assert.ok(after.includes('sinkstream_scheduler_device_streams{device="ort-cpu"} 0'));
    assert.ok(after.includes('sinkstream_scheduler_decisions_total{kind="left"} 1'));
    assert.not.ok(after.includes(`sinkstream_scheduler_steps{stream="${id}"}`));
    client.close();
  } finally {
    await server.close();
  }
});

test.run();
