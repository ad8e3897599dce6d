/**
 * Many viewers on loopback, some of which never read, watch one real stream: the slow ones are
 * skipped (or dropped), not waited for, and every fast viewer gets every fragment. Nothing here
 * depends on the machine's speed: the slow viewers' sockets are paused for good, so their backlog
 * only grows until the server skips them; the fast viewers read in this process, on the event loop
 * the server sends from, so a busy machine slows both sides alike. Every wait is for an event, with
 * a bound that only a hung stream reaches. How much viewers move the generator's block times is a
 * figure of the machine: `npm run bench:serve` (tools/bench/serve-load.ts) measures it.
 *
 * The stream is heavy on purpose (256x256 frames: synthetic weights, a 16x space-to-depth decoder,
 * crf 10) so that a paused viewer overruns what the kernel buffers per connection soon.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { httpJson, startTestServer } from './helpers/server-fixture.js';
import type { ServerMessage } from '../../src/serve/protocol.js';

const FAST = 8;
const SLOW = 4;
const VIEWERS = FAST + SLOW;
/** Fragments the fast viewers must see while everyone watches, at the least. */
const MIN_FRAGMENTS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A viewer counting the media fragments it reads (init segments left out); a slow one never reads. */
class Viewer {
  fragments = 0;
  closeCode: number | null = null;
  private hello = false;
  private initNext = false;
  private constructor(
    readonly ws: WebSocket,
    readonly slow: boolean,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (this.initNext) this.initNext = false;
        else this.fragments++;
        return;
      }
      const m = JSON.parse(data.toString()) as ServerMessage;
      if (m.type === 'hello') this.hello = true;
      if (m.type === 'init') this.initNext = true;
    });
    ws.on('close', (code) => (this.closeCode = code));
    ws.on('error', () => undefined);
  }

  static async open(port: number, slow: boolean): Promise<Viewer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?v=1`, { perMessageDeflate: false });
    const v = new Viewer(ws, slow);
    await until('the hello', () => v.hello, 15_000);
    return v;
  }

  watch(stream: string): void {
    this.ws.send(JSON.stringify({ type: 'watch', stream }));
    // From here on a slow viewer reads nothing: what the server sends it piles up.
    if (this.slow) (this.ws as unknown as { _socket: Socket })._socket.pause();
  }
}

test(`${FAST} fast viewers get every fragment while ${SLOW} viewers that never read are skipped or dropped`, async () => {
  const server = await startTestServer(
    {
      model: { weights: 'synthetic', arch: { latentChannels: 768 } },
      decoder: { factor: 16 },
      generation: { opening: 'noise' }, // 256x256 frames: not the demo scenes' size
      output: { crf: 10, preset: 'ultrafast', keyframeSeconds: 0.5 },
      engine: { threads: 1 },
      serve: { maxViewers: VIEWERS + 2, viewerHighWaterBytes: 256 * 1024, viewerHardCapBytes: 4 * 1024 * 1024 },
    },
    { scheduling: false },
  );
  const viewers: Viewer[] = [];
  try {
    const created = await httpJson(server, 'POST', '/api/streams', { prompt: 'a red circle bouncing on a black background' });
    assert.is(created.status, 201, JSON.stringify(created.body));
    const stream = server.streams.get(created.body.stream.id)!;
    for (let i = 0; i < VIEWERS; i++) viewers.push(await Viewer.open(server.port, i < SLOW));
    for (const v of viewers) v.watch(stream.id);
    await until(`${VIEWERS} viewers`, () => stream.hub.size === VIEWERS);

    // Fragments sent from now on, all viewers watching: each fast viewer must get all of them.
    let sent = 0;
    const broadcast = stream.hub.broadcast.bind(stream.hub);
    stream.hub.broadcast = (f) => {
      sent++;
      broadcast(f);
    };
    const skippedOrDropped = () => stream.figures().skippedFragments + stream.figures().droppedViewers > 0;
    await until('the slow viewers skipped or dropped', () => skippedOrDropped() && sent >= MIN_FRAGMENTS);
    stream.hub.broadcast = broadcast;

    const fast = viewers.filter((v) => !v.slow);
    await until(`every fast viewer to get the ${sent} fragments sent (${fast.map((v) => v.fragments).join(',')})`, () =>
      fast.every((v) => v.fragments >= sent || v.closeCode !== null),
    );
    for (const v of fast) {
      assert.is(v.closeCode, null, 'fast viewers stay connected');
      assert.ok(v.fragments >= sent, `a fast viewer got ${v.fragments} fragments, fewer than the ${sent} sent`);
    }
    assert.ok(stream.figures().skippedFragments + stream.figures().droppedViewers > 0, 'slow viewers were skipped or dropped');
  } finally {
    for (const v of viewers) v.ws.terminate();
    await server.close();
  }
});

test.run();
