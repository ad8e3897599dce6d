/** `sinkstream render` with classifier-free guidance on the bundled demo model: a playable file, and its refusals. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { probeVideo, tempDir } from '../encode/helpers.js';

test('render --seconds 1 --set generation.guidance=2: exit 0, a playable file of 1 s of frames', async () => {
  const dir = tempDir('guidance');
  const out = path.join(dir, 'guided.mp4');
  const run = await runCli(['render', '--seconds', '1', '--set', 'generation.guidance=2', '--out', out]);
  assert.is(run.code, 0, run.stderr);
  const video = await probeVideo(out);
  assert.is(video.frames, 16, 'the demo model at 16 fps');
  assert.is(video.width, 64);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a negative guidance: exit 2 naming generation.guidance, nothing written', async () => {
  const dir = tempDir('guidance-bad');
  const out = path.join(dir, 'never.mp4');
  const run = await runCli(['render', '--seconds', '1', '--set', 'generation.guidance=-1', '--out', out]);
  assert.is(run.code, 2);
  assert.match(run.stderr, 'generation.guidance');
  assert.not.ok(fs.existsSync(out));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a negative prompt the demo model cannot encode: exit 2 naming generation.negativePrompt, nothing written', async () => {
  const dir = tempDir('guidance-negative');
  const out = path.join(dir, 'never.mp4');
  const run = await runCli(['render', '--seconds', '1', '--set', 'generation.guidance=2', '--set', 'generation.negativePrompt=blurry', '--out', out]);
  assert.is(run.code, 2);
  assert.match(run.stderr, 'generation.negativePrompt');
  assert.not.ok(fs.existsSync(out));
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
