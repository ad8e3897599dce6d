import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { calibrationGrid, CostModel, createScheduler, forwardFeatures, objectiveFps, schedulerConfig, VirtualClock } from '../../scheduler/index.js';
import { streamSpecFromConfig } from '../../src/realtime/stream-spec.js';
import { schedulerSection } from '../../src/config/sections/scheduler.js';
import { configSchema } from '../../src/config/schema.js';

test('the objective frame rate is the video\'s own (generation.fps) unless scheduler.targetFps sets one', () => {
  const byVideo = configSchema.parse({ generation: { fps: 24 } });
  assert.is(byVideo.scheduler.targetFps, undefined);
  assert.is(objectiveFps(byVideo), 24);
  assert.is(streamSpecFromConfig(byVideo, 's').objectives.targetFps, 24);
  const set = configSchema.parse({ generation: { fps: 24 }, scheduler: { targetFps: 8 } });
  assert.is(streamSpecFromConfig(set, 's').objectives.targetFps, 8);
});

test('the integration API: a spec from the config, a calibration grid, a fitted model, a scheduler', () => {
  const config = configSchema.parse({});
  const spec = streamSpecFromConfig(config, 'viewer-1', { priority: 2 });
  assert.is(spec.tokensPerFrame, (config.model.latentHeight / 2) * (config.model.latentWidth / 2));
  assert.is(spec.windowFrames, config.cache.window);
  assert.equal(spec.objectives, { targetFps: config.generation.fps, latencyMs: config.scheduler.latencyMs, ttffMs: config.scheduler.ttffMs, priority: 2 });

  const grid = calibrationGrid({ tokensPerFrame: spec.tokensPerFrame, windowFrames: spec.windowFrames, blockFrames: config.scheduler.blockFrames, maxBatch: 2 });
  assert.ok(grid.length >= 8);
  assert.ok(grid.every((p) => p.cachedTokens + p.queryTokens <= spec.windowFrames * spec.tokensPerFrame));
  // A made-up engine: 2 ms per call, 0.01 ms per token, 1e-5 ms per token-key.
  const samples = grid.map((p) => {
    const [, , tokens, tokenKeys] = forwardFeatures(Array.from({ length: p.batch }, () => p));
    return { device: 'cpu', ...p, ms: 2 + 0.01 * tokens + 1e-5 * tokenKeys };
  });
  const { model } = CostModel.fit({ forward: samples });
  const clock = new VirtualClock(0);
  const scheduler = createScheduler({ clock, costModel: model, devices: [{ id: 'cpu', maxBatch: 1 }], config: config.scheduler });
  const decision = scheduler.admit(spec);
  assert.is(decision.admitted, true);
  const plan = scheduler.tick();
  assert.is(plan.jobs.length, 1);
  assert.is(plan.jobs[0].items[0].streamId, 'viewer-1');
  assert.is(JSON.parse(JSON.stringify(plan)).jobs[0].items[0].kind, 'denoise'); // plans are plain data
});

test("the configuration's scheduler section defaults are the scheduler's own", () => {
  assert.equal(schedulerSection.parse({}), schedulerConfig());
  const a = schedulerConfig();
  a.stepLadder.push(1);
  assert.equal(schedulerConfig().stepLadder, [4, 3, 2]);
});

test.run();
