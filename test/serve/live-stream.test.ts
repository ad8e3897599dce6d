/**
 * One live stream with a fake generator (instant blocks) and the real ffmpeg: pacing holds
 * generation to the playout clock, stop() closes everything and finalizes the recording, a retune
 * reaches the generator as the whole validated cache section.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../src/config/schema.js';
import type { FrameBlock } from '../../src/loop/types.js';
import { LiveStream, type LiveGenerator } from '../../src/serve/live-stream.js';
import { ServerMetrics } from '../../src/serve/metrics.js';
import { probeVideo, tempDir } from '../encode/helpers.js';
import { testConfig } from './helpers/server-fixture.js';

class FakeGenerator implements LiveGenerator {
  readonly width = 32;
  readonly height = 32;
  blocks = 0;
  closed = false;
  retunes: Array<Config['cache']> = [];
  prompts: string[] = [];
  constructor(
    readonly fps: number,
    readonly framesPerBlock = 2,
  ) {}
  /** When each block was asked for (performance.now()). */
  readonly pulledAt: number[] = [];
  async *[Symbol.asyncIterator](): AsyncIterator<FrameBlock> {
    while (!this.closed) {
      this.pulledAt.push(performance.now());
      const index = this.blocks++;
      const frames = Array.from({ length: this.framesPerBlock }, (_, i) => new Uint8Array(this.width * this.height * 3).fill((index * 40 + i * 10) & 255));
      await new Promise((r) => setImmediate(r));
      yield {
        index,
        firstFrame: index * this.framesPerBlock,
        width: this.width,
        height: this.height,
        frames,
        steps: 4,
        timings: { totalMs: 1, engineMs: 1, decodeMs: 0 },
        cache: [{ frame: 0, role: 'sink', position: 0 }],
        queryPositions: [index],
      };
    }
  }
  async setPrompt(prompt: string): Promise<void> {
    this.prompts.push(prompt);
  }
  retune(cache: Config['cache']): void {
    this.retunes.push(cache);
  }
  cacheView() {
    return [];
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

async function run(config: Config, generator: FakeGenerator, ms: number, record = false) {
  const stream = await LiveStream.start({
    id: 'test',
    config,
    createdAt: performance.now(),
    record,
    createGenerator: async () => generator,
    metrics: new ServerMetrics(() => []),
  });
  await new Promise((r) => setTimeout(r, ms));
  return stream;
}

/** Waits (event-driven, bounded) until the generator has been asked for `blocks` blocks. */
async function untilPulled(gen: FakeGenerator, blocks: number, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (gen.pulledAt.length < blocks) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${blocks} blocks (${gen.pulledAt.length} so far)`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('pace: no block is asked of the generator more than maxLeadSeconds before its first frame is due', async () => {
  const fps = 20;
  const leadMs = 200;
  const gen = new FakeGenerator(fps);
  const stream = await run(testConfig({ serve: { pace: true, maxLeadSeconds: leadMs / 1000 } }), gen, 0);
  await untilPulled(gen, 12);
  await stream.stop();
  // Frame n is due at (first frame out) + n periods or later, and the first frame came out after the
  // first block was asked for. Holds however slow the machine is (a slow one only pulls later);
  // unpaced, all 12 blocks come at once. 2 ms: timers may fire up to a millisecond early.
  const period = 1000 / fps;
  gen.pulledAt.forEach((at, k) => {
    const due = gen.pulledAt[0] + k * gen.framesPerBlock * period;
    assert.ok(at >= due - leadMs - 2, `block ${k} asked for ${(due - at).toFixed(0)} ms before its first frame is due (lead ${leadMs} ms)`);
  });
  assert.ok(gen.closed, 'the generator is closed');
  assert.is(stream.state, 'ended');
});

test('without pace the generator runs ahead of the playout clock, as fast as the encoder takes frames', async () => {
  // 1 fps: the 40 frames below play for 40 s; paced, the 20th block would come 37.8 s after the
  // first, past the 30 s the wait allows.
  const gen = new FakeGenerator(1);
  const stream = await run(testConfig({ serve: { pace: false } }), gen, 0);
  await untilPulled(gen, 20, 30_000);
  const frames = stream.stats.snapshot().frames;
  await stream.stop();
  assert.ok(frames >= 38, `${frames} frames generated`);
});

test('stop finalizes the recording: every frame generated is in the file', async () => {
  const dir = tempDir('live-rec');
  try {
    const gen = new FakeGenerator(20);
    const stream = await run(testConfig({ serve: { recordDir: dir } }), gen, 800, true);
    const info = stream.info();
    let ended = '';
    stream.once('ended', (r) => (ended = r));
    await stream.stop('test over');
    // viewers see the recording's file name only, never the server's folders
    assert.is(info.recording, 'test.mp4');
    assert.is(ended, 'test over');
    const frames = stream.figures().frames;
    const video = await probeVideo(path.join(dir, info.recording!));
    assert.is(video.frames, frames);
    assert.is(video.width, 32);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a retune gives the generator the whole cache section, validated; prompt switches pass through; a stopped stream refuses', async () => {
  const gen = new FakeGenerator(20);
  const config = testConfig();
  const stream = await run(config, gen, 100);
  stream.retune({ window: 9, participative: { budget: 8 } });
  assert.equal(gen.retunes, [{ ...config.cache, window: 9, participative: { ...config.cache.participative, budget: 8 } }]);
  assert.is(stream.info().cache.window, 9);
  assert.throws(() => stream.retune({ sink: 9 }), (e: any) => e.code === 'ERR_CONFIG_INVALID' && /cache/.test(e.message));
  assert.is(gen.retunes.length, 1, 'a refused retune never reaches the generator');
  assert.is(stream.info().cache.sink, config.cache.sink, 'and changes nothing');
  await stream.setPrompt('a blue square bouncing on a dark blue background');
  assert.equal(gen.prompts, ['a blue square bouncing on a dark blue background']);
  assert.is(stream.info().prompt, 'a blue square bouncing on a dark blue background');
  await stream.stop();
  assert.throws(() => stream.retune({ window: 8 }), /stream test is ended/);
});

test.run();
