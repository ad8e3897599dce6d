/**
 * `sinkstream render` through the scheduler bridge, end to end (the real CLI, model and ffmpeg):
 * offline renders keep the top rung and say so; `--realtime` is admitted by the measured
 * calibration and reports TTFF, latency percentiles, misses and the steps used; an objective the
 * engine cannot meet is refused with the scheduler's reason before any file exists.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { probeVideo, tempDir } from '../encode/helpers.js';
import { runCli } from '../helpers/cli.js';


const cli = (args: string[]) => runCli(args);

test('offline render: every block at the full steps, no deadline', async () => {
  const out = path.join(tempDir('render-offline'), 'clip.mp4');
  const run = await cli(['render', '--frames', '9', '--out', out, '--no-progress']);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /rendered 9 frames .*; steps 8:1 4:2$/m, "the first block from noise at generation.openingSteps' 8, then 2 at generation.steps' 4");
  const drawn = await cli(['render', '--frames', '9', '--out', out, '--no-progress', '--set', 'generation.opening=scene']);
  assert.is(drawn.code, 0, drawn.stderr);
  assert.match(drawn.stdout, /rendered 9 frames .*; steps 4:2 0:1$/m, 'the drawn opening (0 steps), then 2 blocks at 4');
  assert.not.match(run.stdout, /realtime/);
});

test('--realtime: admitted, held to the objective, summary with TTFF, latency p50/p99, misses and steps', async () => {
  const out = path.join(tempDir('render-realtime'), 'clip.mp4');
  const started = Date.now();
  const run = await cli(['render', '--realtime', '--verbose', '--frames', '12', '--out', out, '--no-progress', '--set', 'scheduler.targetFps=4']);
  assert.is(run.code, 0, run.stderr);
  const line = run.stdout.trim();
  const m = /steps ((?:[0-9]:\d+ ?)+); realtime at 4 fps: TTFF (\d+) ms, latency p50 (\d+) \/ p99 (\d+) ms, (\d+) of 12 frames missed \(jitter p99 (\d+) ms\)$/.exec(line);
  assert.ok(m, line);
  const blocks = m![1].split(' ').reduce((n, s) => n + Number(s.split(':')[1]), 0);
  assert.is(blocks, 4);
  assert.ok(Number(m![2]) > 0 && Number(m![3]) >= Number(m![2]) - 1, line);
  // Held to 4 fps: the last block is released 2.25 s after the first.
  assert.ok(Date.now() - started > 2250, 'not faster than real time');
  assert.match(run.stderr, /calibrated ort-cpu on \d+ blocks/);
  assert.match(run.stderr, /scheduler: admitted: admitted on ort-cpu at \d steps/);
  assert.is((await probeVideo(out)).frames, 12);
});

test('--realtime with an objective beyond the engine: refused with the reason, nothing written', async () => {
  const out = path.join(tempDir('render-refused'), 'never.mp4');
  const run = await cli(['render', '--realtime', '--frames', '12', '--out', out, '--no-progress', '--set', 'scheduler.targetFps=5000']);
  assert.is(run.code, 1, run.stderr);
  assert.match(run.stderr, /--realtime: the scheduler refused the render: .*5000 fps.*ort-cpu: needs \d+\.\d\d of the device/);
  assert.not.ok(fs.existsSync(out));
});

test.run();
