/**
 * render through the TAEHV decoder at a small shape on ORT CPU: the tiny default transformer with
 * synthetic weights and 16 latent channels, a TAEHV of channels 16/8/8/8 (synthetic), 8x8 latents ->
 * 64x64 frames. A stream's first block gives 9 frames, every later one 12.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { probeVideo, tempDir } from '../encode/helpers.js';
import { syntheticTaehvWeights } from '../../src/decode/taehv/weights.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { runCli } from '../helpers/cli.js';

const SMALL = [
  '--set', 'model.arch.latentChannels=16',
  '--set', 'model.latentHeight=8',
  '--set', 'model.latentWidth=8',
  '--set', 'model.weights=synthetic',
  '--set', 'generation.opening=noise',
  '--set', 'generation.openingSteps=null',
  '--set', 'generation.steps=[1000,750,500,250]',
  '--set', 'engine.threads=1',
  '--set', 'decoder.kind=taehv',
  '--set', 'decoder.taehv.channels=[16,8,8,8]',
];

const render = (args: string[], command = ['render', '--no-progress']) => runCli([...command, ...SMALL, ...args]);

test('render --frames 21 through TAEHV: two blocks (9 + 12 frames), 64x64, exactly 21 frames', async () => {
  const out = path.join(tempDir('taehv-render'), 'a.mp4');
  const run = await render(['--frames', '21', '--out', out]);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /rendered 21 frames .*64x64/);
  assert.match(run.stdout, /steps 4:2\b/); // 9 + 12: no third block
  const video = await probeVideo(out);
  assert.equal([video.frames, video.width, video.height], [21, 64, 64]);
});

test('render --frames 30 through TAEHV: the third block is cut, 30 frames written', async () => {
  const out = path.join(tempDir('taehv-render'), 'b.mp4');
  const run = await render(['--frames', '30', '--out', out]);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /steps 4:3\b/);
  assert.is((await probeVideo(out)).frames, 30);
});

test('render --realtime --frames 24 through TAEHV: the scheduler releases the third block the shorter first block needs', async () => {
  const out = path.join(tempDir('taehv-render'), 'rt.mp4');
  const run = await render(['--realtime', '--frames', '24', '--out', out, '--set', 'scheduler.targetFps=8']);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /rendered 24 frames .*steps 4:3;/);
  assert.is((await probeVideo(out)).frames, 24);
});

test('render with a TAEHV checkpoint missing a key exits 2 naming the key, and writes nothing', async () => {
  const dir = tempDir('taehv-render');
  const weights = syntheticTaehvWeights({ latentChannels: 16, channels: [16, 8, 8, 8] }, 0);
  weights.delete('decoder.20.weight');
  const file = path.join(dir, 'taew-bad.safetensors');
  await writeSafetensors(file, weights);
  const out = path.join(dir, 'c.mp4');
  const run = await render(['--frames', '9', '--out', out, '--set', `decoder.weights=${file}`]);
  assert.is(run.code, 2);
  assert.match(run.stderr, /ERR_MODEL_SHAPE|decoder\.20\.weight/);
  assert.match(run.stderr, /decoder\.20\.weight/);
  assert.not.ok(fs.existsSync(out));
});

test('bench --json through TAEHV counts video frames: 12 per block (first 9), videoFps = 4 x latentFps, decode ms reported', async () => {
  const run = await render(['--blocks', '3', '--json'], ['bench']);
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout.trim());
  assert.is(report.decoder, 'taehv');
  assert.equal([report.latentFramesPerBlock, report.videoFramesPerBlock, report.firstBlockVideoFrames], [3, 12, 9]);
  assert.ok(Math.abs(report.videoFps - 4 * report.latentFps) < 1e-9 * report.videoFps);
  assert.ok(report.decodeMsPerBlock > 0);
});

test.run();
