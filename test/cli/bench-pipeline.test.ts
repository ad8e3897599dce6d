/**
 * bench's whole-pipeline section: the phase split from hand-out moments and engine calls (virtual
 * times), the encoder meter on the real ffmpeg, and `bench --json` end to end on the CPU: startup costs
 * apart, time to first frame, encode measured or reported unavailable (an error only with --encode).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { phaseSplit, type EngineCall } from '../../src/cli/commands/bench-pipeline.js';
import { EncodeMeter } from '../../src/encode/encode-meter.js';
import { resolveFfmpegPath } from '../../src/encode/ffmpeg-path.js';
import { runCli } from '../helpers/cli.js';


const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { env });

function ffmpegAvailable(): boolean {
  try {
    resolveFfmpegPath();
    return true;
  } catch {
    return false;
  }
}

test('phase split: engine calls belong to the period they end in; host is what the engine did not use', () => {
  // Blocks handed out at 100, 200, 310, 400: periods 100, 110, 90.
  const handedOutAt = [100, 200, 310, 400];
  const calls: EngineCall[] = [
    { kind: 'forward', ms: 60, endedAt: 90 }, // block 0's: before the first steady period, not counted
    { kind: 'forward', ms: 70, endedAt: 180 },
    { kind: 'cache', ms: 5, endedAt: 190 },
    { kind: 'forward', ms: 80, endedAt: 300 },
    { kind: 'cache', ms: 4, endedAt: 305 },
    { kind: 'forward', ms: 75, endedAt: 400 }, // ends exactly at the hand-out: that period
    { kind: 'forward', ms: 10, endedAt: 450 }, // after the last block: not counted
  ];
  const split = phaseSplit(handedOutAt, calls, [30, 8, 9, 10], [2, 3, 4, 500]);
  assert.is(split.periodMs, 100);
  assert.is(split.forwardsMs, (70 + 80 + 75) / 3);
  assert.is(split.cacheMs, 3);
  assert.ok(Math.abs(split.hostMs - (100 - 75 - 3)) < 1e-9);
  assert.is(split.decodeMs, 9, 'median of blocks 1..N');
  assert.is(split.encodeMs, 4);
  assert.is(split.decodeFits, true);
  assert.is(split.encodeFits, true);
  const slow = phaseSplit(handedOutAt, calls, [30, 200, 150, 180], [300, 300]);
  assert.is(slow.decodeFits, false, 'a decode longer than the period bounds the rate');
  assert.is(slow.encodeFits, false);
  const none = phaseSplit(handedOutAt, calls, [], []);
  assert.equal([none.decodeMs, none.encodeMs, none.decodeFits, none.encodeFits], [null, null, null, null]);
});

test('the encode meter feeds the real ffmpeg, times each block, and removes its file', async () => {
  if (!ffmpegAvailable()) {
    console.log('  (skipped: no ffmpeg here)');
    return;
  }
  const meter = EncodeMeter.open(resolveFfmpegPath().path, { width: 34, height: 18, fps: 16, crf: 23, preset: 'ultrafast', keyframeSeconds: 1 });
  const frame = (v: number) => new Uint8Array(34 * 18 * 3).fill(v);
  meter.writeBlock([frame(10), frame(20), frame(30)]);
  meter.writeBlock([frame(40), frame(50)]);
  const figures = await meter.finish();
  assert.is(figures.frames, 5);
  assert.is(figures.blockMs.length, 2);
  assert.ok(figures.encoderFps > 0 && figures.bytes > 0 && figures.drainMs >= 0);
  // its own folder, not a listing of the temp dir: another process's meter may be writing there
  assert.ok(meter.scratchDir.startsWith(path.join(os.tmpdir(), 'sinkstream-bench-')));
  assert.is(fs.existsSync(meter.scratchDir), false, 'the temporary file is gone');

  const broken = EncodeMeter.open(resolveFfmpegPath().path, { width: 34, height: 18, fps: 16, crf: 23, preset: 'ultrafast', keyframeSeconds: 1 });
  broken.writeBlock([new Uint8Array(7)]);
  const error = await broken.finish().catch((e: unknown) => e);
  assert.match(String((error as Error).message), /7 bytes/);
});

test('bench --json: startup apart, time to first frame, the pipeline section; encode unavailable is reported, not fatal', async () => {
  const run = await cli(['bench', '--blocks', '4', '--json', '--set', 'engine.warmup=true']);
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim());
  for (const key of ['engineMs', 'decoderOpenMs', 'warmupMs', 'warmupForwards', 'generatorMs']) assert.type(report.startup[key], 'number', `startup.${key}`);
  assert.ok(report.startup.warmupForwards >= 2, 'the warm-up ran one forward per cache size');
  const p = report.pipeline;
  assert.ok(p.ttffMs > 0);
  assert.is(p.firstBlockVideoFrames, 3);
  assert.ok(Math.abs(p.videoFps - (3 * 1000) / p.msPerBlock) < 1e-9, 'video frames per period');
  for (const key of ['periodMs', 'forwardsMs', 'cacheMs', 'hostMs']) assert.type(p.split[key], 'number', `split.${key}`);
  assert.ok(p.split.forwardsMs > 0);
  assert.type(p.decodeMsPerBlock, 'number');
  assert.equal([p.targets.videoFps, p.targets.ttffMs], [40, 250]);
  if (ffmpegAvailable()) {
    assert.is(p.encode.available, true);
    assert.is(p.encode.frames, 12, 'every frame went to the encoder');
    assert.ok(p.encode.capacityFps > 0 && p.encode.encoderFps > 0);
    assert.type(p.encodeMsPerBlock, 'number');
  }

  const missing = await cli(['bench', '--blocks', '2', '--json'], { FFMPEG_PATH: '/nonexistent/ffmpeg' });
  assert.is(missing.code, 0, missing.stderr);
  const m = JSON.parse(missing.stdout.trim()).pipeline;
  assert.is(m.encode.available, false);
  assert.match(m.encode.reason, /FFMPEG_PATH/);
  assert.is(m.encodeMsPerBlock, null);

  const asked = await cli(['bench', '--blocks', '2', '--json', '--encode'], { FFMPEG_PATH: '/nonexistent/ffmpeg' });
  assert.is(asked.code, 1);
  assert.match(asked.stderr, /ERR_FFMPEG_MISSING/);
  assert.is(asked.stdout, '');
});

test.run();
