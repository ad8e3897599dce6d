/**
 * A frozen ffmpeg (SIGSTOP: alive, silent) is found by the encoder watchdog: frames wait in it and
 * nothing comes out for stallMs, so it is killed and replaced, the restart counted and viewers told.
 * Fragments carry the stream's frame index; frames the frozen encoder swallowed are skipped.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EncoderSupervisor, type RestartCause } from '../../src/serve/encoder-supervisor.js';
import { LiveStream } from '../../src/serve/live-stream.js';
import { ServerMetrics } from '../../src/serve/metrics.js';
import type { ServerMessage } from '../../src/serve/protocol.js';
import type { ViewerSocket } from '../../src/serve/viewer-hub.js';
import { waitFor } from '../encode/helpers.js';
import { testConfig } from './helpers/server-fixture.js';
import { StepsGenerator } from './helpers/steps-generator.js';

const SIZE = 32;
const frame = (i: number) => new Uint8Array(SIZE * SIZE * 3).fill((i * 37) & 255);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('supervisor: a silent ffmpeg with frames waiting is replaced after stallMs on its clock, not before', async () => {
  let clock = 0;
  const supervisor = new EncoderSupervisor({ width: SIZE, height: SIZE, fps: 4, crf: 23, preset: 'ultrafast', keyframeSeconds: 1 }, 3, 'watchdog test', undefined, {
    stallMs: 1000,
    now: () => clock,
    checkEveryMs: 0, // the test looks itself
  });
  const restarts: RestartCause[] = [];
  const fragments: number[] = [];
  supervisor.on('restarted', (_cause, _n, kind) => restarts.push(kind));
  supervisor.on('fragment', (_f, n) => fragments.push(n));
  supervisor.start();
  let stopped: number | undefined;
  try {
    for (let i = 0; i < 3; i++) await supervisor.writeFrame(frame(i));
    await waitFor('fragments of frames 0 and 1', () => (fragments.length >= 2 ? true : undefined), 30_000);
    assert.equal(fragments, [0, 1]);
    assert.is(supervisor.framesWaiting, 1, 'the muxer holds the latest frame: not a stall');
    clock += 60_000;
    assert.is(supervisor.checkStall(), false, 'one held frame is never a stall, however long');

    stopped = supervisor.pid!;
    process.kill(stopped, 'SIGSTOP');
    await supervisor.writeFrame(frame(3)); // the pipe takes them; ffmpeg does not
    await supervisor.writeFrame(frame(4));
    assert.is(supervisor.framesWaiting, 3);
    clock += 999;
    assert.is(supervisor.checkStall(), false, 'not yet: 999 ms of 1000');
    clock += 1;
    assert.is(supervisor.checkStall(), true);
    assert.equal(restarts, ['stalled']);
    assert.is(supervisor.restarts, 1);
    assert.ok(supervisor.pid !== stopped);
    await waitFor('the frozen ffmpeg killed', () => (alive(stopped!) ? undefined : true), 10_000);

    // the new encoder takes the next frames; frames 2..4 went down with the frozen one
    for (let i = 5; i < 8; i++) await supervisor.writeFrame(frame(i));
    await waitFor('fragments after the restart', () => (fragments.length >= 4 ? true : undefined), 30_000);
    assert.equal(fragments, [0, 1, 5, 6]);
  } finally {
    if (stopped !== undefined && alive(stopped)) process.kill(stopped, 'SIGKILL');
    await supervisor.kill();
  }
});

class RecordingSocket implements ViewerSocket {
  bufferedAmount = 0;
  readyState = 1;
  readonly messages: ServerMessage[] = [];
  send(data: Buffer | string): void {
    if (typeof data === 'string') this.messages.push(JSON.parse(data));
  }
  close(): void {
    this.readyState = 3;
  }
  terminate(): void {
    this.readyState = 3;
  }
}

test('live stream: ffmpeg frozen by SIGSTOP is restarted, counted, viewers told; its gap counts as misses', async () => {
  const metrics = new ServerMetrics(() => [stream.figures()]);
  const stream: LiveStream = await LiveStream.start({
    id: 'frozen',
    config: testConfig({ serve: { encoderRestarts: 3 } }),
    createdAt: performance.now(),
    record: false,
    createGenerator: async () => new StepsGenerator(5),
    metrics,
    encoderWatchdog: { stallMs: 1500, checkEveryMs: 100 },
  });
  const viewer = new RecordingSocket();
  stream.hub.add(viewer);
  let stopped: number | undefined;
  try {
    await waitFor('frames delivered', () => (stream.figures().framesDelivered >= 6 ? true : undefined), 30_000);
    stopped = stream.encoderPid!;
    process.kill(stopped, 'SIGSTOP');
    const notice = await waitFor(
      'the viewer told of the restart',
      () => viewer.messages.find((m): m is Extract<ServerMessage, { type: 'encoder-restarted' }> => m.type === 'encoder-restarted'),
      30_000,
    );
    assert.is(notice.stream, 'frozen');
    assert.is(notice.cause, 'stalled');
    assert.is(notice.restarts, 1);
    assert.match(notice.message, /wrote nothing for \d+ ms with \d+ frames waiting/);
    assert.ok(stream.encoderPid !== stopped);
    const initAgain = await waitFor('a new init', () => viewer.messages.find((m) => m.type === 'init' && m.reason === 'encoder-restart'), 30_000);
    assert.ok(initAgain);
    const before = stream.figures().framesDelivered;
    await waitFor('delivery resumed', () => (stream.figures().framesDelivered > before + 3 ? true : undefined), 30_000);
    const f = stream.figures();
    assert.is(f.encoderRestarts, 1);
    // 1.5 s or more between deliveries, less the 0.5 s generation may run ahead (serve.maxLeadSeconds):
    // at 16 fps at least 15 slots without a frame (a stall counted once would be 1)
    assert.ok(f.deadlineMisses >= 15, `misses ${f.deadlineMisses}`);
    assert.match(await metrics.text(), /^sinkstream_encoder_restarts_total 1$/m);
  } finally {
    if (stopped !== undefined && alive(stopped)) process.kill(stopped, 'SIGKILL');
    await stream.stop();
  }
});

test.run();
