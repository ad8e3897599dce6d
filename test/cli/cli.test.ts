/** End to end: the real CLI in a child process, the real ffmpeg, the default tiny model. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { probeVideo, tempDir, waitFor } from '../encode/helpers.js';
import { resolveFfmpegPath } from '../../src/encode/ffmpeg-path.js';
import { checkPromptedMotion, VideoMetrics, type PromptCheck } from '../../src/eval/metrics.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';
import { loadConfig } from '../../src/config/load.js';
import { forwardFlops } from '../../scheduler/index.js';
import { runCli } from '../helpers/cli.js';


const cli = (args: string[], options: { onSpawn?: (child: ChildProcess) => void; cwd?: string } = {}) => runCli(args, options);

test('render writes an H.264 MP4 with the requested frame count and size', async () => {
  const out = path.join(tempDir('cli'), 'clip.mp4');
  const run = await cli(['render', '--frames', '20', '--out', out, '--no-progress']);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /rendered 20 frames/);
  const video = await probeVideo(out);
  assert.is(video.codec, 'h264');
  assert.is(video.pixFmt, 'yuv420p');
  assert.is(video.frames, 20);
  assert.is(video.width, 64);
  assert.is(video.height, 64);
});

/** The file's frames through the evaluation's detector: are the prompted colours present and moving? */
function promptedMotionIn(file: string): PromptCheck {
  const { generation, model } = loadConfig();
  const spec = loadSceneSpec(model.scene!);
  const size = spec.frameSize;
  const raw = execFileSync(resolveFfmpegPath().path, ['-loglevel', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 28 });
  const primed = generation.opening === 'scene' ? generation.blockFrames : 0;
  const metrics = new VideoMetrics(parsePrompt(generation.prompt, spec), spec, generation.fps, primed);
  for (let at = 0; at + size * size * 3 <= raw.length; at += size * size * 3) metrics.add(new Uint8Array(raw.subarray(at, at + size * size * 3)));
  return checkPromptedMotion(metrics.finish());
}

test('npm start\'s render: the generated frames show the prompted colours, moving; random weights do not', async () => {
  const dir = tempDir('cli-default');
  const trained = path.join(dir, 'default.mp4');
  const run = await cli(['render', '--seconds', '2', '--out', trained, '--no-progress']);
  assert.is(run.code, 0, run.stderr);
  const check = promptedMotionIn(trained);
  assert.ok(check.ok, `demo model: ${check.reason}`);
  const random = path.join(dir, 'random.mp4');
  assert.is((await cli(['render', '--seconds', '2', '--out', random, '--no-progress', '--set', 'model.weights=synthetic'])).code, 0);
  const failed = promptedMotionIn(random);
  assert.not.ok(failed.ok, `random weights passed: fidelity ${failed.colourFidelity}, speed ${failed.speed}`);
});

test('a bad configuration key exits 2, names the key and writes nothing', async () => {
  const out = path.join(tempDir('cli'), 'never.mp4');
  const run = await cli(['render', '--frames', '6', '--out', out, '--set', 'cache.polcy=sink']);
  assert.is(run.code, 2);
  assert.match(run.stderr, /cache\.polcy/);
  assert.not.ok(fs.existsSync(out));
});

test('an impossible cache combination exits 2 with the key path', async () => {
  const out = path.join(tempDir('cli'), 'never.mp4');
  const run = await cli(['render', '--frames', '6', '--out', out, '--set', 'cache.window=5', '--set', 'cache.sink=3']);
  assert.is(run.code, 2);
  assert.match(run.stderr, /cache\.window/);
  assert.not.ok(fs.existsSync(out));
});

test('a prompt word outside the vocabulary exits 2, lists the vocabulary, writes nothing', async () => {
  const out = path.join(tempDir('cli'), 'never.mp4');
  const run = await cli(['render', '--frames', '6', '--out', out, '--prompt', 'a zebra galloping']);
  assert.is(run.code, 2);
  assert.match(run.stderr, /zebra/);
  assert.match(run.stderr, /vocabulary/);
  assert.not.ok(fs.existsSync(out));
});

test('a missing weights file exits 2 naming the file', async () => {
  const out = path.join(tempDir('cli'), 'never.mp4');
  const run = await cli(['render', '--frames', '6', '--out', out, '--set', 'model.weights=/nonexistent/model.safetensors']);
  assert.is(run.code, 2);
  assert.match(run.stderr, /\/nonexistent\/model\.safetensors/);
  assert.not.ok(fs.existsSync(out));
});

test('bad arguments exit 2', async () => {
  assert.is((await cli(['render', '--frames', 'ten'])).code, 2);
  assert.is((await cli(['render', '--frames', '5', '--seconds', '1'])).code, 2);
  assert.is((await cli(['render', '--bogus'])).code, 2);
  assert.is((await cli(['no-such-command'])).code, 2);
});

test('an interrupted render (SIGINT) exits 130 and leaves a playable file with the frames so far', async () => {
  const out = path.join(tempDir('cli'), 'interrupted.mp4');
  let child: ChildProcess | undefined;
  const done = cli(['render', '--frames', '100000', '--out', out, '--no-progress'], { onSpawn: (c) => (child = c) });
  await waitFor('fragments on disk', () => (fs.existsSync(out) && fs.statSync(out).size > 4000 ? true : undefined), 60_000);
  child!.kill('SIGINT');
  const run = await done;
  assert.is(run.code, 130, run.stderr);
  assert.match(run.stdout, /interrupted after (\d+) frames/);
  const written = Number(/interrupted after (\d+) frames/.exec(run.stdout)![1]);
  const video = await probeVideo(out);
  assert.ok(video.frames > 0, 'frames decode');
  assert.is(video.frames, written);
});

test('a killed render (SIGKILL) still leaves a playable file', async () => {
  const out = path.join(tempDir('cli'), 'killed.mp4');
  let child: ChildProcess | undefined;
  const done = cli(['render', '--frames', '100000', '--out', out, '--no-progress'], { onSpawn: (c) => (child = c) });
  await waitFor('fragments on disk', () => (fs.existsSync(out) && fs.statSync(out).size > 4000 ? true : undefined), 60_000);
  child!.kill('SIGKILL');
  await done;
  await new Promise((r) => setTimeout(r, 1500)); // ffmpeg sees stdin close and finishes the file
  const video = await probeVideo(out);
  assert.ok(video.frames > 0, `frames decode: ${video.frames}`);
});

test('check-config prints the complete configuration and rejects a bad file', async () => {
  const ok = await cli(['check-config', 'configs/presets/deep-forcing.yaml']);
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /policy: deep-sink/);
  assert.match(ok.stdout, /compression: participative/);
  const dir = tempDir('cli');
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'engine:\n  provider: cuda\n');
  const run = await cli(['check-config', bad]);
  assert.is(run.code, 2);
  assert.match(run.stderr, /engine\.provider/);
});

test('bench --json prints one object with the measured fields', async () => {
  const run = await cli(['bench', '--blocks', '4', '--json']);
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim());
  for (const key of ['blocks', 'msPerBlock', 'engineMsPerBlock', 'decodeMsPerBlock', 'overhead', 'earlyMsPerBlock', 'lateMsPerBlock', 'latentFps', 'videoFps', 'rssMbMid']) {
    assert.type(report[key], 'number', key);
  }
  assert.is(report.blocks, 4);
  // space-to-depth: one video frame per latent frame, first block included
  assert.equal([report.latentFramesPerBlock, report.videoFramesPerBlock, report.firstBlockVideoFrames], [3, 3, 3]);
  assert.ok(Math.abs(report.videoFps - report.latentFps) < 1e-9);
  // engine and block figures are medians of separately timed series (the bench asks one block ahead), so no
  // order between them is asserted: that would depend on the machine's load
  assert.ok(report.engineMsPerBlock > 0 && report.msPerBlock > 0);
  assert.ok(Number.isFinite(report.overhead));
});

test('bench --peak counts the forwards\' FLOPs (docs/model.md) and compares them with a MatMul measured here', async () => {
  const run = await cli(['bench', '--blocks', '8', '--json', '--peak']);
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim());
  const { model } = loadConfig();
  const shape = { dim: model.arch.dim, layers: model.arch.layers, ffnDim: model.arch.ffnDim, textLen: model.arch.textLen };
  // a steady block (window full: 9 cached frames of 64 tokens): the configured steps + the previous block's clean pass,
  // 192 query tokens each
  const steps = loadConfig().generation.steps.length;
  const steady = (steps + 1) * forwardFlops(shape, { queryTokens: 192, cachedTokens: 576 });
  assert.ok(Math.abs(report.gflopPerBlock * 1e9 - steady) < 1e-6 * steady, `${report.gflopPerBlock} GFLOP vs ${steady / 1e9}`);
  assert.ok(report.forwardGflops > 0 && report.peakMatmulGflops > 0);
  assert.ok(Math.abs(report.ofPeak - report.forwardGflops / report.peakMatmulGflops) < 1e-9);
  const refused = await cli(['bench', '--blocks', '2', '--peak', '--set', 'engine.provider=webgpu']);
  assert.is(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--peak measures the ORT CPU provider/);
});

test.run();
