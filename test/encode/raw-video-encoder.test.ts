/**
 * The encoder runs ffmpeg itself: one process with exactly the encoder settings' arguments (no
 * capability probes before it), a missing binary reported at start, and a live output that closes
 * under it stops ffmpeg as a death.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { openMp4File } from '../../src/encode/mp4-file-writer.js';
import { startFragmentedStream } from '../../src/encode/fmp4-stream.js';
import { RawVideoEncoder } from '../../src/encode/raw-video-encoder.js';
import { resolveFfmpegPath } from '../../src/encode/ffmpeg-path.js';
import { mp4FileOutputOptions, rawRgbInputOptions, type EncoderOptions } from '../../src/encode/encoder-settings.js';
import { isSinkstreamError, type SinkstreamError } from '../../src/errors.js';
import { gradientFrame, probeVideo, tempDir, waitFor } from './helpers.js';
import { withEnv } from '../../tools/stand-in/env.js';

const dir = tempDir('raw-encoder');
const opts: EncoderOptions = { width: 64, height: 64, fps: 16, crf: 23, preset: 'ultrafast', keyframeSeconds: 1 };

/** An ffmpeg that logs each run's arguments (one JSON array a line) and then runs the real one. */
function loggingFfmpeg(): { bin: string; runs: () => string[][] } {
  const log = path.join(dir, `runs-${process.hrtime.bigint()}.log`);
  const bin = path.join(dir, `ffmpeg-logged-${process.hrtime.bigint()}`);
  const real = resolveFfmpegPath().path;
  fs.writeFileSync(
    bin,
    `#!${process.execPath}\n` +
      `require('fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify(process.argv.slice(2)) + '\\n');\n` +
      `const r = require('child_process').spawnSync(${JSON.stringify(real)}, process.argv.slice(2), { stdio: 'inherit' });\n` +
      `process.exit(r.status ?? 1);\n`,
    { mode: 0o755 },
  );
  const runs = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]) : []);
  return { bin, runs };
}

function withFfmpegPath<T>(bin: string, body: () => Promise<T>): Promise<T> {
  return withEnv({ FFMPEG_PATH: bin }, body);
}

test('one ffmpeg run per file, with exactly the encoder settings: input options, stdin, output options, the file', async () => {
  const { bin, runs } = loggingFfmpeg();
  const file = path.join(dir, 'once.mp4');
  await withFfmpegPath(bin, async () => {
    const writer = await openMp4File(file, opts);
    for (let i = 0; i < 10; i++) await writer.writeFrame(gradientFrame(64, 64, i));
    await writer.close();
  });
  const all = runs();
  assert.is(all.length, 1, `ffmpeg runs: ${JSON.stringify(all)}`);
  assert.equal(all[0], [...rawRgbInputOptions(opts), '-i', 'pipe:0', '-y', ...mp4FileOutputOptions(opts), `file:${file}`]);
  assert.is((await probeVideo(file)).frames, 10);
});

test('a binary that cannot be started: started rejects with ERR_ENCODER naming the job, died and exit follow', async () => {
  const encoder = new RawVideoEncoder({
    ffmpegPath: path.join(dir, 'no-such-ffmpeg'),
    label: 'encoding nowhere.mp4',
    frameBytes: 12,
    inputOptions: [],
    outputOptions: [],
    target: 'file:/dev/null',
  });
  const died: SinkstreamError[] = [];
  encoder.on('died', (e) => died.push(e));
  let error: unknown;
  await encoder.started.catch((e: unknown) => (error = e));
  assert.ok(isSinkstreamError(error) && error.code === 'ERR_ENCODER', String(error));
  assert.match((error as Error).message, /could not start ffmpeg \(encoding nowhere\.mp4\): .*ENOENT/);
  const exit = await encoder.exited;
  assert.equal(exit, { code: null, signal: null, expected: false, interrupted: false });
  assert.is(died.length, 1);
  const write = await encoder.writeFrame(new Uint8Array(12)).catch((e: unknown) => e);
  assert.is(write, error);
});

test('a live output destroyed while ffmpeg runs stops ffmpeg: a death, not a hang', async () => {
  const stream = startFragmentedStream(opts);
  stream.output.resume();
  await stream.writeFrame(gradientFrame(64, 64, 0));
  const died: SinkstreamError[] = [];
  stream.on('died', (e) => died.push(e));
  stream.output.destroy();
  const exit = await stream.exited;
  assert.is(exit.expected, false);
  assert.is(exit.signal, 'SIGKILL');
  await waitFor('died', () => (died.length === 1 ? true : undefined));
  assert.is(died[0].code, 'ERR_ENCODER');
});

test.run();
