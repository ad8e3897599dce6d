import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { clipFrames, writeClipFrames } from '../../src/encode/clip-writer.js';

const frame = (n: number) => Uint8Array.of(n);

/** Blocks of `perBlock` one-byte frames numbered 0, 1, 2, ...; `count` blocks, then null. */
function blocks(count: number, perBlock: number) {
  let index = 0;
  return {
    asked: 0,
    async next() {
      this.asked++;
      if (index >= count) return null;
      const b = { index, frames: Array.from({ length: perBlock }, (_, i) => frame(index * perBlock + i)) };
      index++;
      return b;
    },
  };
}

function sink(failAt = -1) {
  const got: number[] = [];
  return {
    got,
    async writeFrame(rgb: Uint8Array) {
      if (got.length === failAt) throw new Error('ffmpeg exited');
      got.push(rgb[0]);
    },
  };
}

test('clipFrames: frames, else seconds (default output.seconds) at generation.fps, at least one', () => {
  const config = configSchema.parse({ generation: { fps: 16 }, output: { seconds: 2 } });
  assert.is(clipFrames(config), 32);
  assert.is(clipFrames(config, { seconds: 0.5 }), 8);
  assert.is(clipFrames(config, { frames: 5, seconds: 9 }), 5);
  assert.is(clipFrames(config, { seconds: 0.001 }), 1);
});

test('writes frames block by block up to the count, cutting the last block', async () => {
  const out = sink();
  const src = blocks(10, 3);
  const seen: Array<[number, number]> = [];
  const frames: number[] = [];
  const written = await writeClipFrames(out, src, 7, { onBlock: (b, n) => seen.push([b.index, n]), onFrame: (n) => frames.push(n) });
  assert.is(written, 7);
  assert.equal(out.got, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(seen, [[0, 3], [1, 6], [2, 7]]);
  assert.equal(frames, [1, 2, 3, 4, 5, 6, 7]);
  assert.is(src.asked, 3, 'no block asked for past the count');
});

test('ends when the blocks end', async () => {
  const out = sink();
  assert.is(await writeClipFrames(out, blocks(2, 3), 100), 6);
});

test('stop is asked before each block and each frame', async () => {
  const out = sink();
  const src = blocks(10, 3);
  let stop = false;
  const written = await writeClipFrames(out, src, 100, { stop: () => stop, onFrame: (n) => (stop = n === 4) });
  assert.is(written, 4);
  assert.is(src.asked, 2);
  assert.is(await writeClipFrames(sink(), blocks(1, 3), 100, { stop: () => true }), 0);
});

test('a failed write fails the clip, unless stop says so (ffmpeg got the same Ctrl-C)', async () => {
  try {
    await writeClipFrames(sink(2), blocks(3, 3), 100);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match((e as Error).message, /ffmpeg exited/);
  }
  let interrupted = false;
  const out = {
    got: 0,
    async writeFrame() {
      if (this.got === 2) {
        interrupted = true;
        throw new Error('ffmpeg exited');
      }
      this.got++;
    },
  };
  assert.is(await writeClipFrames(out, blocks(3, 3), 100, { stop: () => interrupted }), 2);
});

test.run();
