import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Fmp4Splitter, Fmp4SplitError, type InitSegment, type MediaFragment } from '../../src/serve/fmp4-splitter.js';
import { childBoxes } from '../../src/encode/mp4-boxes.js';
import { makeFmp4 } from './helpers/ffmpeg-fixture.js';

function split(bytes: Buffer, chunk: (i: number) => number) {
  const inits: InitSegment[] = [];
  const frags: MediaFragment[] = [];
  const s = new Fmp4Splitter({ onInit: (i) => inits.push(i), onFragment: (f) => frags.push(f) });
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, chunk(i));
    s.push(bytes.subarray(at, at + n));
    at += n;
  }
  return { inits, frags };
}

test('splits in any chunking into one init + fragments; keyframe flags follow the GOP', async () => {
  // 48 frames, GOP 8, fragments of at most 2 frames (125 ms at 16 fps): 4 fragments per GOP
  const mp4 = await makeFmp4({ frames: 48, gop: 8, fragDurationUs: 125_000 });
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 997) + 1;
  for (const chunker of [() => 1, () => 4096, rand, () => mp4.length]) {
    const { inits, frags } = split(mp4, chunker);
    assert.is(inits.length, 1);
    assert.equal(childBoxes(inits[0].data, 0, inits[0].data.length).map((b) => b.type), ['ftyp', 'moov']);
    assert.match(inits[0].codec ?? '', /^avc1\./);
    assert.is(frags.reduce((n, f) => n + f.samples, 0), 48);
    const keyAt = frags.map((f, i) => (f.keyframe ? i : -1)).filter((i) => i >= 0);
    assert.is(keyAt.length, 6, 'one keyframe fragment per GOP');
    // every keyframe fragment starts a GOP: samples before it are a multiple of 8
    for (const i of keyAt) assert.is(frags.slice(0, i).reduce((n, f) => n + f.samples, 0) % 8, 0);
    assert.ok(frags.length > 6, 'fragments inside a GOP exist and are not keyframes');
    for (const f of frags) assert.equal(childBoxes(f.data, 0, f.data.length).map((b) => b.type), ['moof', 'mdat']);
    assert.equal(frags.map((f) => f.seq), frags.map((_, i) => i));
    // bytes are kept exactly, except the mfra index at the end
    const joined = Buffer.concat([inits[0].data, ...frags.map((f) => f.data)]);
    assert.ok(mp4.subarray(0, joined.length).equals(joined));
  }
});

test('corrupt input is an error, not an unbounded buffer', () => {
  const s = new Fmp4Splitter({ onInit: () => {}, onFragment: () => {} });
  assert.throws(() => s.push(Buffer.from([0, 0, 0, 4, 0x66, 0x74, 0x79, 0x70])), (e: unknown) => e instanceof Fmp4SplitError);
  const t = new Fmp4Splitter({ onInit: () => {}, onFragment: () => {} });
  assert.throws(() => t.push(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04])), (e: unknown) => e instanceof Fmp4SplitError);
});

test('a moof before any moov is an error', () => {
  const s = new Fmp4Splitter({ onInit: () => {}, onFragment: () => {} });
  assert.throws(() => s.push(Buffer.from([0, 0, 0, 8, 0x6d, 0x6f, 0x6f, 0x66])), /moof before moov/);
});

test.run();
