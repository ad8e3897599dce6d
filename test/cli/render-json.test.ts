/**
 * `sinkstream render --json`: the summary as one JSON object on stdout and nothing else there
 * (like `bench --json`), through the real CLI, model and ffmpeg; the figures agree with the file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { probeVideo, tempDir, waitFor } from '../encode/helpers.js';
import { blockFigures, formatRenderSummary, type RenderSummary } from '../../src/cli/render-summary.js';
import { runCli } from '../helpers/cli.js';


const cli = (args: string[], onSpawn?: (child: ChildProcess) => void) => runCli(args, onSpawn ? { onSpawn } : {});

/** stdout must be exactly one line holding one JSON object. */
function onlyJson(stdout: string): RenderSummary {
  assert.ok(stdout.endsWith('\n'), 'ends with a newline');
  const lines = stdout.slice(0, -1).split('\n');
  assert.is(lines.length, 1, `one line on stdout, got:\n${stdout}`);
  const parsed = JSON.parse(lines[0]) as RenderSummary;
  assert.type(parsed, 'object');
  return parsed;
}

test('render --json: one JSON object on stdout, its figures agree with the file', async () => {
  const out = path.join(tempDir('render-json'), 'clip.mp4');
  const run = await cli(['render', '--frames', '8', '--out', out, '--json']);
  assert.is(run.code, 0, run.stderr);
  const s = onlyJson(run.stdout);
  assert.is(s.status, 'finished');
  assert.is(s.reason, null);
  assert.is(s.exitCode, 0);
  assert.is(s.output, out);
  assert.is(s.framesRequested, 8);
  assert.is(s.framesGenerated, 8);
  assert.is(s.framesWritten, 8);
  const video = await probeVideo(out);
  assert.is(video.frames, s.framesWritten);
  assert.equal([s.width, s.height], [video.width, video.height]);
  assert.is(s.videoSeconds, s.framesWritten / s.fps);
  // default config: blocks of 3 frames, the first from noise at generation.openingSteps' 8 steps, the others from their previous frame at 4
  assert.equal(s.blocksBySteps, { '4': 2, '8': 1 });
  assert.is(s.blocks, 3);
  for (const key of ['seconds', 'generatedFps', 'msPerBlock', 'firstBlockMs', 'decodeMsPerBlock', 'decodeMsTotal'] as const) {
    assert.type(s[key], 'number', key);
    assert.ok((s[key] as number) >= 0, key);
  }
  assert.ok(s.seconds > 0);
  assert.ok(Math.abs(s.generatedFps - s.framesGenerated / s.seconds) < 1e-9);
  assert.is(s.engine, 'ort/cpu');
  assert.is(s.decoder, 'space-to-depth');
  assert.type(s.cache, 'string');
  assert.is(s.realtime, null);
});

test('render --json interrupted (SIGINT): exit 130, status and reason in the object, frames as in the file', async () => {
  const out = path.join(tempDir('render-json'), 'interrupted.mp4');
  let child: ChildProcess | undefined;
  const done = cli(['render', '--frames', '100000', '--out', out, '--json'], (c) => (child = c));
  await waitFor('fragments on disk', () => (fs.existsSync(out) && fs.statSync(out).size > 4000 ? true : undefined), 60_000);
  child!.kill('SIGINT');
  const run = await done;
  assert.is(run.code, 130, run.stderr);
  const s = onlyJson(run.stdout);
  assert.is(s.status, 'interrupted');
  assert.match(s.reason ?? '', /SIGINT/);
  assert.is(s.exitCode, 130);
  assert.is(s.framesRequested, 100000);
  assert.ok(s.framesWritten > 0 && s.framesWritten <= s.framesGenerated);
  assert.is((await probeVideo(out)).frames, s.framesWritten);
});

test('a bad option with --json: exit 2, the message on stderr, nothing on stdout', async () => {
  const run = await cli(['render', '--frames', '0', '--json']);
  assert.is(run.code, 2);
  assert.is(run.stdout, '');
  assert.match(run.stderr, /--frames 0/);
});

test('block figures: medians over blocks 1..N (block 0 alone when it is the only one), NaN-free JSON', () => {
  assert.equal(blockFigures({ blockMs: [50, 10, 30, 20], decodeMs: [5, 1, 3, 2] }), {
    msPerBlock: 20,
    firstBlockMs: 50,
    decodeMsPerBlock: 2,
    decodeMsTotal: 11,
  });
  assert.equal(blockFigures({ blockMs: [7], decodeMs: [2] }), { msPerBlock: 7, firstBlockMs: 7, decodeMsPerBlock: 2, decodeMsTotal: 2 });
  assert.equal(blockFigures({ blockMs: [], decodeMs: [] }), { msPerBlock: null, firstBlockMs: null, decodeMsPerBlock: null, decodeMsTotal: 0 });
  const line = formatRenderSummary({ generatedFps: NaN, seconds: Infinity } as unknown as RenderSummary);
  assert.equal(JSON.parse(line), { generatedFps: null, seconds: null });
});

test.run();
