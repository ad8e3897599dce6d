import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ViewerHub, type ViewerSocket } from '../../src/serve/viewer-hub.js';
import { CloseCode } from '../../src/serve/protocol.js';
import type { MediaFragment } from '../../src/serve/fmp4-splitter.js';

class FakeSocket implements ViewerSocket {
  bufferedAmount = 0;
  readyState = 1;
  sent: Array<Buffer | string> = [];
  closed: { code?: number; reason?: string } | null = null;
  send(data: Buffer | string): void {
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  terminate(): void {
    this.readyState = 3;
  }
  binaries(): string[] {
    return this.sent.filter((d): d is Buffer => Buffer.isBuffer(d)).map((b) => b.toString());
  }
}

let seq = 0;
const frag = (name: string, keyframe: boolean): MediaFragment => ({ data: Buffer.from(name), keyframe, samples: 1, seq: seq++ });
const init = { data: Buffer.from('INIT'), codec: 'avc1.42c00c' };
const limits = { highWaterBytes: 100, hardCapBytes: 1000, stalledMs: 30_000 };

test('viewers present at start get init then everything', () => {
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 });
  const a = new FakeSocket();
  hub.add(a);
  assert.equal(a.sent, []);
  hub.setInit(init, 'start');
  hub.broadcast(frag('K0', true));
  hub.broadcast(frag('D1', false));
  assert.equal(a.binaries(), ['INIT', 'K0', 'D1']);
  const announce = JSON.parse(a.sent[0] as string);
  assert.equal(announce, { type: 'init', stream: 's', codec: 'avc1.42c00c', width: 64, height: 64, reason: 'start' });
});

test('a late joiner gets init and the current group of pictures, starting at its keyframe', () => {
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 });
  hub.setInit(init, 'start');
  hub.broadcast(frag('D-before-any-key', false));
  hub.broadcast(frag('K0', true));
  hub.broadcast(frag('D1', false));
  hub.broadcast(frag('K2', true));
  hub.broadcast(frag('D3', false));
  const late = new FakeSocket();
  hub.add(late);
  hub.broadcast(frag('D4', false));
  assert.equal(late.binaries(), ['INIT', 'K2', 'D3', 'D4']);
});

test('a joiner before any keyframe waits for one', () => {
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 });
  hub.setInit(init, 'start');
  hub.broadcast(frag('D0', false));
  const v = new FakeSocket();
  hub.add(v);
  hub.broadcast(frag('D1', false));
  hub.broadcast(frag('K2', true));
  assert.equal(v.binaries(), ['INIT', 'K2']);
});

test('past the high-water mark a viewer skips to the next keyframe; past the hard cap it is dropped', () => {
  const dropped: ViewerSocket[] = [];
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 }, { dropped: (s) => dropped.push(s) });
  const fast = new FakeSocket();
  const slow = new FakeSocket();
  hub.add(fast);
  hub.add(slow);
  hub.setInit(init, 'start');
  hub.broadcast(frag('K0', true));
  slow.bufferedAmount = 500; // behind
  hub.broadcast(frag('D1', false));
  slow.bufferedAmount = 50; // caught up, but mid-GOP: still skips
  hub.broadcast(frag('D2', false));
  hub.broadcast(frag('K3', true));
  hub.broadcast(frag('D4', false));
  assert.equal(fast.binaries(), ['INIT', 'K0', 'D1', 'D2', 'K3', 'D4']);
  assert.equal(slow.binaries(), ['INIT', 'K0', 'K3', 'D4']);
  assert.is(hub.skippedFragments, 2);
  slow.bufferedAmount = 5000;
  hub.broadcast(frag('D5', false));
  assert.is(slow.closed?.code, CloseCode.TOO_SLOW);
  assert.equal(dropped, [slow]);
  assert.is(hub.size, 1);
  assert.is(hub.droppedViewers, 1);
});

test('a viewer that reads nothing while skipping is closed with 4008 after stalledMs; one whose backlog shrinks stays', () => {
  let now = 0;
  const dropped: ViewerSocket[] = [];
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 }, { dropped: (s) => dropped.push(s) }, () => now);
  const stuck = new FakeSocket();
  const slowReader = new FakeSocket();
  hub.add(stuck);
  hub.add(slowReader);
  hub.setInit(init, 'start');
  hub.broadcast(frag('K0', true));
  // Both fall behind: past the high-water mark, under the hard cap; they skip.
  stuck.bufferedAmount = 900;
  slowReader.bufferedAmount = 900;
  for (let t = 0; t <= 60_000; t += 1000) {
    now = t;
    hub.broadcast(frag(`K${t}`, true));
    slowReader.bufferedAmount -= 10; // reads a little every second: still behind, never stalled
    if (t < 30_000) assert.is(stuck.closed, null, `closed after only ${t} ms`);
  }
  assert.is(stuck.closed?.code, CloseCode.TOO_SLOW);
  assert.match(stuck.closed?.reason ?? '', /stalled: read nothing for 30 s/);
  assert.equal(dropped, [stuck]);
  assert.is(slowReader.closed, null);
  assert.ok(hub.has(slowReader));
  assert.is(hub.size, 1);
  assert.equal(slowReader.binaries(), ['INIT', 'K0'], 'it skipped all along');
});

test('stalled time counts only while skipping: a viewer that catches up and is sent media starts afresh', () => {
  let now = 0;
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 }, {}, () => now);
  const v = new FakeSocket();
  hub.add(v);
  hub.setInit(init, 'start');
  v.bufferedAmount = 500;
  hub.broadcast(frag('K0', true)); // skipping since 0
  now = 20_000;
  v.bufferedAmount = 0;
  hub.broadcast(frag('K1', true)); // caught up: sent
  v.bufferedAmount = 500;
  now = 40_000;
  hub.broadcast(frag('K2', true)); // skipping again since 40 s
  now = 69_000;
  hub.broadcast(frag('K3', true));
  assert.is(v.closed, null, '29 s of this stall so far');
  now = 70_000;
  hub.broadcast(frag('K4', true));
  assert.is(v.closed?.code, CloseCode.TOO_SLOW);
});

test('a new init (encoder restart) sends init to everyone, who then wait for a keyframe', () => {
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 });
  const v = new FakeSocket();
  hub.add(v);
  hub.setInit(init, 'start');
  hub.broadcast(frag('K0', true));
  hub.setInit({ data: Buffer.from('INIT2'), codec: 'avc1.42c00c' }, 'encoder-restart');
  hub.broadcast(frag('D-stale', false));
  hub.broadcast(frag('K1', true));
  assert.equal(v.binaries(), ['INIT', 'K0', 'INIT2', 'K1']);
  const late = new FakeSocket();
  hub.add(late);
  assert.equal(late.binaries(), ['INIT2', 'K1']);
  assert.is(JSON.parse(v.sent.filter((s) => typeof s === 'string')[1] as string).reason, 'encoder-restart');
});

test('JSON figures skip viewers that are behind', () => {
  const hub = new ViewerHub('s', limits, { width: 64, height: 64 });
  const a = new FakeSocket();
  const b = new FakeSocket();
  hub.add(a);
  hub.add(b);
  b.bufferedAmount = 200;
  hub.sendJson({ type: 'pong' });
  assert.is(a.sent.length, 1);
  assert.is(b.sent.length, 0);
  hub.endAll({ type: 'ended', stream: 's', reason: 'stopped' });
  assert.is(hub.size, 0);
  assert.is(JSON.parse(b.sent[0] as string).type, 'ended');
});

test.run();
