import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openMp4File, type Mp4FileOptions } from '../../src/encode/mp4-file-writer.js';
import { readFmp4Layout } from '../../src/encode/mp4-boxes.js';
import { isSinkstreamError, type SinkstreamError } from '../../src/errors.js';
import { gradientFrame, probeVideo, sleep, tempDir, waitFor } from './helpers.js';
import { rejection } from '../helpers/assertions.js';
import { withEnv } from '../../tools/stand-in/env.js';

const dir = tempDir('mp4');
const opts: Mp4FileOptions = { width: 64, height: 64, fps: 16, crf: 23, preset: 'ultrafast', keyframeSeconds: 1 };
const here = path.dirname(fileURLToPath(import.meta.url));

test('writes H.264 yuv420p fragmented MP4 with every frame', async () => {
  const file = path.join(dir, 'full.mp4');
  const writer = await openMp4File(file, opts);
  for (let i = 0; i < 40; i++) await writer.writeFrame(gradientFrame(64, 64, i));
  const result = await writer.close();
  assert.equal(result.frames, 40);
  assert.equal(result.framesInFile, 40);
  assert.equal(result.bytes, fs.statSync(file).size);
  assert.is(result.interrupted, false);

  const probed = await probeVideo(file);
  assert.equal(probed, { codec: 'h264', pixFmt: 'yuv420p', width: 64, height: 64, frames: 40 });

  const layout = readFmp4Layout(fs.readFileSync(file));
  assert.equal(layout.types.slice(0, 2), ['ftyp', 'moov']);
  assert.ok(layout.fragments.length >= 4, `fragments: ${layout.types.join(' ')}`);
  assert.equal(layout.samples, 40);
  assert.ok(layout.fragments[0].startsWithKeyframe, 'the first fragment starts at a keyframe');
  // keyframeSeconds 1 at 16 fps: a keyframe at least every 16 frames.
  let sinceKey = 0;
  for (const f of layout.fragments) {
    sinceKey = f.startsWithKeyframe ? f.samples : sinceKey + f.samples;
    assert.ok(sinceKey <= 16 + 4, `keyframe interval too long at ${sinceKey}`);
  }
  // Fragments stay short (FILE_FRAGMENT_SECONDS = 0.25 s = 4 frames at 16 fps).
  assert.ok(Math.max(...layout.fragments.map((f) => f.samples)) <= 4);
  assert.is(layout.truncated, false);
});

test('ffmpeg interrupted (Ctrl-C reaches it too): close() counts the frames the file holds, not those handed over', async () => {
  const file = path.join(dir, 'interrupted.mp4');
  const writer = await openMp4File(file, opts);
  let handed = 0;
  for (; handed < 20; handed++) await writer.writeFrame(gradientFrame(64, 64, handed));
  process.kill(writer.pid!, 'SIGINT');
  // Frames go on until the writes are refused: those ffmpeg had not read when it stopped are not in the file.
  for (; handed < 400; handed++) {
    const refused = await writer.writeFrame(gradientFrame(64, 64, handed)).then(() => false, () => true);
    if (refused) break;
  }
  const result = await writer.close();
  assert.is(result.interrupted, true);
  const probed = await probeVideo(file);
  assert.is(result.framesInFile, probed.frames);
  assert.ok(result.framesInFile <= result.frames, `${result.framesInFile} in the file, ${result.frames} handed over`);
});

test('close() is idempotent; writes after it are refused', async () => {
  const writer = await openMp4File(path.join(dir, 'idem.mp4'), opts);
  await writer.writeFrame(gradientFrame(64, 64, 0));
  const a = writer.close();
  const b = writer.close();
  assert.is(a, b);
  const err = await rejection(writer.writeFrame(gradientFrame(64, 64, 1)));
  assert.is(err.code, 'ERR_CLOSED');
  assert.equal((await a).frames, 1);
});

test('odd sizes are padded to even with the picture kept', async () => {
  const file = path.join(dir, 'odd.mp4');
  const writer = await openMp4File(file, { ...opts, width: 63, height: 47 });
  assert.equal([writer.encodedWidth, writer.encodedHeight], [64, 48]);
  for (let i = 0; i < 5; i++) await writer.writeFrame(gradientFrame(63, 47, i));
  await writer.close();
  const probed = await probeVideo(file);
  assert.equal([probed.width, probed.height, probed.frames], [64, 48, 5]);
});

test('invalid arguments are refused before ffmpeg starts: no file is created', async () => {
  const file = path.join(dir, 'never.mp4');
  const cases: Array<[Partial<Mp4FileOptions>, RegExp]> = [
    [{ width: 0 }, /width/],
    [{ height: 2.5 }, /height/],
    [{ fps: 0 }, /fps/],
    [{ crf: 60 }, /crf/],
    [{ preset: 'placebo' as Mp4FileOptions['preset'] }, /preset/],
    [{ keyframeSeconds: -1 }, /keyframeSeconds/],
  ];
  for (const [bad, message] of cases) {
    const err = await rejection(openMp4File(file, { ...opts, ...bad }));
    assert.is(err.code, 'ERR_ARGUMENT');
    assert.match(err.message, message);
  }
  const noDir = await rejection(openMp4File(path.join(dir, 'missing', 'x.mp4'), opts));
  assert.is(noDir.code, 'ERR_ARGUMENT');
  assert.match(noDir.message, /does not exist/);
  assert.not.ok(fs.existsSync(file));
});

test('a frame of the wrong size is refused with ERR_ARGUMENT and the writer goes on', async () => {
  const file = path.join(dir, 'size.mp4');
  const writer = await openMp4File(file, opts);
  const err = await rejection(writer.writeFrame(new Uint8Array(10)));
  assert.is(err.code, 'ERR_ARGUMENT');
  assert.match(err.message, /expected 12288/);
  await writer.writeFrame(gradientFrame(64, 64, 0));
  await writer.close();
  assert.is((await probeVideo(file)).frames, 1);
});

test('ffmpeg killed mid-way: writes reject with ERR_ENCODER and stderr; the file keeps its complete fragments', async () => {
  const file = path.join(dir, 'ffmpeg-killed.mp4');
  const writer = await openMp4File(file, opts);
  const died: SinkstreamError[] = [];
  writer.on('died', (e) => died.push(e));
  let written = 0;
  // Write until at least two fragments are on disk, then kill ffmpeg.
  for (; written < 200; written++) {
    await writer.writeFrame(gradientFrame(64, 64, written));
    if (written % 4 === 3 && fs.existsSync(file) && readFmp4Layout(fs.readFileSync(file)).fragments.length >= 2) break;
    await sleep(5);
  }
  process.kill(writer.pid!, 'SIGKILL');
  const err = await rejection(
    (async () => {
      for (let i = 0; i < 1000; i++) {
        await writer.writeFrame(gradientFrame(64, 64, written + i));
        await sleep(2);
      }
    })(),
  );
  assert.is(err.code, 'ERR_ENCODER');
  assert.match(err.message, /killed by SIGKILL/);
  assert.match(err.message, /stderr/);
  assert.match(err.message, /libx264|Output #0|Stream/); // the tail of ffmpeg's own log
  await waitFor('died event', () => (died.length > 0 ? true : undefined), 2000);
  const closeErr = await rejection(writer.close());
  assert.is(closeErr.code, 'ERR_ENCODER');

  const layout = readFmp4Layout(fs.readFileSync(file));
  assert.ok(layout.samples > 0);
  assert.not.ok(layout.types.includes('mfra'), 'ffmpeg had no chance to finish the file');
  const probed = await probeVideo(file);
  assert.is(probed.frames, layout.samples, 'every frame of the complete fragments decodes');
});

test('our process killed mid-way (SIGKILL): ffmpeg sees end of input and finishes the file', async () => {
  const file = path.join(dir, 'parent-killed.mp4');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'render-child.ts'), file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const framesSeen = () => Number(out.match(/frame (\d+)\n(?![\s\S]*frame)/)?.[1] ?? 0);
  await waitFor('20 frames from the child', () => (framesSeen() >= 20 ? true : undefined));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const handed = framesSeen();
  // Finished by ffmpeg alone: the trailer (mfra) appears once it has flushed everything.
  const layout = await waitFor('ffmpeg to finish the file', () => {
    const l = readFmp4Layout(fs.readFileSync(file));
    return l.types.at(-1) === 'mfra' ? l : undefined;
  });
  assert.ok(layout.samples >= handed - 1 && layout.samples <= handed + 1, `${layout.samples} frames in file, ${handed} handed`);
  const probed = await probeVideo(file);
  assert.is(probed.frames, layout.samples);
});

test('an ffmpeg that quits at once (here /bin/true) is reported as ERR_ENCODER, not a hang', async () => {
  await withEnv({ FFMPEG_PATH: '/bin/true' }, async () => {
    const err = await rejection(
      (async () => {
        // Depending on how soon /bin/true exits, the failure shows at start or at the first writes.
        const writer = await openMp4File(path.join(dir, 'true.mp4'), opts);
        for (let i = 0; i < 100; i++) await writer.writeFrame(gradientFrame(64, 64, i));
        await writer.close();
      })(),
    );
    assert.is(err.code, 'ERR_ENCODER');
    assert.match(err.message, /exited with code 0 unexpectedly|could not start ffmpeg/);
  });
});

test('abort() stops ffmpeg without waiting; the file stays decodable', async () => {
  const file = path.join(dir, 'abort.mp4');
  const writer = await openMp4File(file, opts);
  for (let i = 0; i < 20; i++) await writer.writeFrame(gradientFrame(64, 64, i));
  // What abort keeps is what ffmpeg has written: wait for a first fragment (a loaded machine may be slow to write one).
  await waitFor('a first fragment', () => (fs.existsSync(file) && readFmp4Layout(fs.readFileSync(file)).fragments.length > 0 ? true : undefined));
  await writer.abort();
  await writer.abort();
  const err = await rejection(writer.writeFrame(gradientFrame(64, 64, 99)));
  assert.is(err.code, 'ERR_CLOSED');
  const probed = await probeVideo(file);
  assert.ok(probed.frames > 0 && probed.frames <= 20);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
