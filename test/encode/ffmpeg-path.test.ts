import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { resolveFfmpegPath, resolveFfprobePath, whyNotExecutable } from '../../src/encode/ffmpeg-path.js';
import { openMp4File } from '../../src/encode/mp4-file-writer.js';
import { isSinkstreamError, type SinkstreamError } from '../../src/errors.js';
import { tempDir } from './helpers.js';
import { withEnv } from '../../tools/stand-in/env.js';

const dir = tempDir('ffpath');
const opts = { width: 64, height: 64, fps: 16, crf: 23, preset: 'ultrafast' as const, keyframeSeconds: 1 };

function thrown(f: () => unknown): SinkstreamError {
  try {
    f();
  } catch (e) {
    assert.ok(isSinkstreamError(e), `expected a SinkstreamError, got ${e}`);
    return e as SinkstreamError;
  }
  throw new Error('expected an error');
}

test('finds the bundled ffmpeg and ffprobe with no environment override', () => {
  const env = { PATH: '' };
  const ffmpeg = resolveFfmpegPath(env);
  assert.is(ffmpeg.source, 'package');
  assert.ok(['ffmpeg-static', '@ffmpeg-installer/ffmpeg'].includes(ffmpeg.from));
  assert.is(whyNotExecutable(ffmpeg.path, false), null);
  const ffprobe = resolveFfprobePath(env);
  assert.is(ffprobe.from, '@ffprobe-installer/ffprobe');
  assert.is(whyNotExecutable(ffprobe.path, false), null);
});

test('an ffmpeg on PATH is preferred to the npm-shipped builds; a PATH entry that cannot run is passed over', () => {
  const bundled = resolveFfmpegPath({ PATH: '' }).path;
  const binDir = path.join(dir, 'system-bin');
  fs.mkdirSync(binDir, { recursive: true });
  fs.symlinkSync(bundled, path.join(binDir, 'ffmpeg'));
  assert.equal(resolveFfmpegPath({ PATH: binDir }), { path: path.join(binDir, 'ffmpeg'), source: 'PATH', from: 'PATH' });
  const notRunnable = path.join(dir, 'bad-bin');
  fs.mkdirSync(notRunnable, { recursive: true });
  fs.writeFileSync(path.join(notRunnable, 'ffmpeg'), 'not a program', { mode: 0o644 });
  assert.is(resolveFfmpegPath({ PATH: notRunnable }).source, 'package');
});

test('FFMPEG_PATH overrides everything', () => {
  const bundled = resolveFfmpegPath({}).path;
  const link = path.join(dir, 'my-ffmpeg');
  fs.symlinkSync(bundled, link);
  assert.equal(resolveFfmpegPath({ FFMPEG_PATH: link }), { path: link, source: 'env', from: 'FFMPEG_PATH' });
});

test('FFMPEG_PATH to a missing or non-executable file: ERR_FFMPEG_MISSING naming it and how to fix it', () => {
  const missing = path.join(dir, 'nope', 'ffmpeg');
  const err = thrown(() => resolveFfmpegPath({ FFMPEG_PATH: missing }));
  assert.is(err.code, 'ERR_FFMPEG_MISSING');
  assert.ok(err.message.includes(`FFMPEG_PATH=${missing} does not exist`), err.message);
  assert.match(err.message, /Unset FFMPEG_PATH/);

  const plain = path.join(dir, 'plain-file');
  fs.writeFileSync(plain, '#!/bin/sh\n', { mode: 0o644 });
  const notExec = thrown(() => resolveFfmpegPath({ FFMPEG_PATH: plain }));
  assert.match(notExec.message, /is not executable/);
  assert.is(fs.statSync(plain).mode & 0o111, 0, 'a user-given file is never chmod-ed');

  const folder = thrown(() => resolveFfprobePath({ FFPROBE_PATH: dir }));
  assert.match(folder.message, /FFPROBE_PATH=.* is not a regular file/);
});

test('openMp4File with a bad FFMPEG_PATH rejects before creating the file', async () => {
  const file = path.join(dir, 'never.mp4');
  await withEnv({ FFMPEG_PATH: path.join(dir, 'missing-ffmpeg') }, async () => {
    try {
      await openMp4File(file, opts);
      assert.unreachable('should have rejected');
    } catch (e) {
      assert.ok(isSinkstreamError(e));
      assert.is((e as SinkstreamError).code, 'ERR_FFMPEG_MISSING');
    }
  });
  assert.not.ok(fs.existsSync(file));
});

test('a package binary that lost its executable bit is repaired only under node_modules and when ours', () => {
  const pkgBin = path.join(dir, 'node_modules', 'some-ffmpeg', 'ffmpeg');
  fs.mkdirSync(path.dirname(pkgBin), { recursive: true });
  fs.writeFileSync(pkgBin, '#!/bin/sh\n', { mode: 0o644 });
  assert.is(whyNotExecutable(pkgBin, false), 'is not executable');
  assert.is(fs.statSync(pkgBin).mode & 0o777, 0o644, 'not repaired unless asked');
  assert.is(whyNotExecutable(pkgBin, true), null);
  assert.is(fs.statSync(pkgBin).mode & 0o777, 0o755, 'x added where r is');

  const elsewhere = path.join(dir, 'loose-ffmpeg');
  fs.writeFileSync(elsewhere, '#!/bin/sh\n', { mode: 0o644 });
  assert.match(whyNotExecutable(elsewhere, true) ?? '', /not ours to fix/);
  assert.is(fs.statSync(elsewhere).mode & 0o777, 0o644);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
