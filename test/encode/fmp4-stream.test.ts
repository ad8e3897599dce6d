import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { startFragmentedStream, type FragmentedStream, type FragmentedStreamExit } from '../../src/encode/fmp4-stream.js';
import { childBoxes } from '../../src/encode/mp4-boxes.js';
import { Fmp4Splitter, type InitSegment, type MediaFragment } from '../../src/serve/fmp4-splitter.js';
import type { EncoderOptions } from '../../src/encode/encoder-settings.js';
import { isSinkstreamError, type SinkstreamError } from '../../src/errors.js';
import { gradientFrame, noiseFrame, probeVideo, sleep, tempDir, waitFor } from './helpers.js';
import { rejection } from '../helpers/assertions.js';

const dir = tempDir('fmp4');
const opts: EncoderOptions = { width: 64, height: 64, fps: 16, crf: 23, preset: 'ultrafast', keyframeSeconds: 1 };

type Segment = ({ kind: 'init' } & InitSegment) | ({ kind: 'fragment' } & MediaFragment);

function collect(stream: FragmentedStream): { segments: Segment[]; bytes: Buffer[] } {
  const got = { segments: [] as Segment[], bytes: [] as Buffer[] };
  const splitter = new Fmp4Splitter({
    onInit: (init) => got.segments.push({ kind: 'init', ...init }),
    onFragment: (fragment) => got.segments.push({ kind: 'fragment', ...fragment }),
  });
  stream.output.on('data', (b: Buffer) => {
    got.bytes.push(b);
    splitter.push(b);
  });
  stream.output.resume(); // a 'data' listener alone does not restart an output paused on purpose
  return got;
}

const topTypes = (data: Buffer) => childBoxes(data, 0, data.length).map((b) => b.type);

test('emits an init segment (ftyp + moov), then one moof + mdat fragment per frame', async () => {
  const stream = startFragmentedStream({ ...opts, keyframeSeconds: 0.5 });
  const got = collect(stream);
  const exits: FragmentedStreamExit[] = [];
  stream.on('exit', (e) => exits.push(e));
  for (let i = 0; i < 24; i++) await stream.writeFrame(gradientFrame(64, 64, i));
  // Low latency: fragments leave while frames are still coming (one frame behind, no lookahead).
  await waitFor('fragments before close', () => (got.segments.filter((s) => s.kind === 'fragment').length >= 20 ? true : undefined), 5000);
  const exit = await stream.close();
  assert.equal(exit, { code: 0, signal: null, expected: true, interrupted: false });
  await new Promise((r) => (stream.output.readableEnded ? r(null) : stream.output.once('end', r)));
  await sleep(10);
  assert.equal(exits, [exit]);

  const [init, ...fragments] = got.segments;
  assert.is(init.kind, 'init');
  assert.equal(topTypes(init.data), ['ftyp', 'moov']);
  assert.match((init.kind === 'init' && init.codec) || '', /^avc1\.[0-9a-f]{6}$/);
  assert.is(fragments.length, 24);
  for (const f of fragments) {
    assert.is(f.kind, 'fragment');
    if (f.kind !== 'fragment') continue;
    assert.equal(topTypes(f.data), ['moof', 'mdat']);
    assert.is(f.samples, 1);
  }
  // keyframeSeconds 0.5 at 16 fps: a keyframe every 8 frames exactly (no scene-cut keyframes).
  const keys = fragments.flatMap((f, i) => (f.kind === 'fragment' && f.keyframe ? [i] : []));
  assert.equal(keys, [0, 8, 16]);

  // The bytes as a whole are a playable file.
  const file = path.join(dir, 'live.mp4');
  fs.writeFileSync(file, Buffer.concat(got.bytes));
  assert.equal(await probeVideo(file), { codec: 'h264', pixFmt: 'yuv420p', width: 64, height: 64, frames: 24 });
});

test('the first fragment leaves after two frames, however slowly they come (no input probing)', async () => {
  // ffmpeg's probing of its input waits for ~20 frames whatever the rate (4 fps: 5 s); the live
  // command must not. The muxer closes a fragment when the next frame arrives, so two frames in
  // give the first fragment; the wait below only bounds a broken run, it is not the measure.
  const stream = startFragmentedStream({ ...opts, fps: 4 });
  const got = collect(stream);
  try {
    await stream.writeFrame(gradientFrame(64, 64, 0));
    await stream.writeFrame(gradientFrame(64, 64, 1));
    await waitFor('the first fragment after 2 frames', () => (got.segments.some((s) => s.kind === 'fragment') ? true : undefined), 30_000);
    assert.is(stream.frames, 2);
    assert.is(got.segments.filter((s) => s.kind === 'fragment').length, 1, 'one fragment: the frame still open waits for the next');
  } finally {
    await stream.kill();
  }
});

test('keyframes are never more than one second apart in the live stream', async () => {
  const stream = startFragmentedStream({ ...opts, keyframeSeconds: 5 });
  const got = collect(stream);
  for (let i = 0; i < 34; i++) await stream.writeFrame(gradientFrame(64, 64, i));
  await stream.close();
  await waitFor('all fragments', () => (got.segments.length === 35 ? true : undefined), 5000);
  const keys = got.segments.slice(1).flatMap((f, i) => (f.kind === 'fragment' && f.keyframe ? [i] : []));
  assert.equal(keys, [0, 16, 32]);
});

test('backpressure: an unread output stalls writes instead of buffering frames', async () => {
  const size = 128;
  const stream = startFragmentedStream({ ...opts, width: size, height: size, crf: 0 }); // noise at crf 0: big output
  stream.output.pause();
  const frameBytes = size * size * 3;
  let done = 0;
  let maxBuffered = 0;
  const writing = (async () => {
    for (let i = 0; i < 120; i++) {
      await stream.writeFrame(noiseFrame(size, size, i));
      done++;
      maxBuffered = Math.max(maxBuffered, stream.bufferedBytes);
    }
  })();
  await sleep(1500);
  const stalledAt = done;
  assert.ok(stalledAt < 120, `all ${stalledAt} writes went through with nobody reading`);
  // Our side of stdin holds at most its high-water mark plus the frame that crossed it.
  assert.ok(maxBuffered <= 16384 + frameBytes, `buffered ${maxBuffered} bytes`);
  await sleep(300);
  assert.is(done, stalledAt, 'no progress while the output is not read');

  collect(stream); // start reading: the writes go on
  await writing;
  assert.is(done, 120);
  const exit = await stream.close();
  assert.ok(exit.expected);
});

test('kill() is an expected exit; ffmpeg killed from outside is a death with stderr', async () => {
  const a = startFragmentedStream(opts);
  collect(a);
  await a.writeFrame(gradientFrame(64, 64, 0));
  const killed = await a.kill();
  assert.equal(killed, { code: null, signal: 'SIGKILL', expected: true, interrupted: false });
  assert.is((await rejection(a.writeFrame(gradientFrame(64, 64, 1)))).code, 'ERR_CLOSED');

  const b = startFragmentedStream(opts);
  const got = collect(b);
  const died: SinkstreamError[] = [];
  b.on('died', (e) => died.push(e));
  for (let i = 0; i < 3; i++) await b.writeFrame(gradientFrame(64, 64, i));
  await waitFor('the stream to be running', () => (got.segments.length >= 2 ? true : undefined), 5000);
  process.kill(b.pid!, 'SIGKILL');
  const exit = await b.exited;
  assert.equal(exit, { code: null, signal: 'SIGKILL', expected: false, interrupted: false });
  assert.is(died.length, 1);
  assert.is(died[0].code, 'ERR_ENCODER');
  assert.match(died[0].message, /killed by SIGKILL unexpectedly[\s\S]*libx264/);
  const err = await rejection(b.writeFrame(gradientFrame(64, 64, 1)));
  assert.is(err, died[0]);
});

test('bad options throw ERR_ARGUMENT before anything starts', () => {
  try {
    startFragmentedStream({ ...opts, fps: -1 });
    assert.unreachable();
  } catch (e) {
    assert.ok(isSinkstreamError(e));
    assert.is((e as SinkstreamError).code, 'ERR_ARGUMENT');
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
