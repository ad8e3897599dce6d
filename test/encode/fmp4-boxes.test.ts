import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Fmp4Segmenter,
  avcCodecString,
  readBoxes,
  readFmp4Layout,
  readFragmentInfo,
  type Fmp4Segment,
} from '../../src/encode/fmp4-boxes.js';

function box(type: string, ...payload: Uint8Array[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}
const u32 = (...v: number[]) => {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
};

const NON_SYNC = 0x00010000;

/** moof with tfhd default flags (non-sync) and a trun of `count` samples, first flags `first` if given. */
function moof(count: number, first?: number): Buffer {
  const tfhd = box('tfhd', u32(0x020020, 1, NON_SYNC)); // default-base-is-moof + default_sample_flags
  const trunFlags = 0x000301 | (first === undefined ? 0 : 0x04); // data_offset, duration, size, [first flags]
  const samples = Array.from({ length: count }, () => [1024, 10]).flat();
  const trun = box('trun', u32(trunFlags, count, 0), first === undefined ? Buffer.alloc(0) : u32(first), u32(...samples));
  return box('moof', box('mfhd', u32(0, 1)), box('traf', tfhd, trun));
}

const ftyp = box('ftyp', Buffer.from('isom'), u32(512));
const avcC = box('avcC', Buffer.from([1, 0x64, 0x00, 0x1f, 0xff]));
const avc1 = box('avc1', Buffer.alloc(78), avcC);
const stsd = box('stsd', u32(0, 1), avc1);
const moov = box('moov', box('mvhd', Buffer.alloc(20)), box('trak', box('mdia', box('minf', box('stbl', stsd)))));
const stream = Buffer.concat([
  ftyp,
  moov,
  moof(1, 0x02000000), // a keyframe
  box('mdat', Buffer.alloc(10)),
  moof(3),
  box('mdat', Buffer.alloc(30)),
  box('mfra', Buffer.alloc(8)),
]);

test('readBoxes: one level, stops before a cut box', () => {
  const all = readBoxes(stream);
  assert.equal(all.boxes.map((b) => b.type), ['ftyp', 'moov', 'moof', 'mdat', 'moof', 'mdat', 'mfra']);
  assert.ok(all.complete);
  const cut = readBoxes(stream.subarray(0, stream.length - 5));
  assert.not.ok(cut.complete);
  assert.is(cut.boxes.length, 6);
  assert.is(cut.next, stream.length - 16);
});

test('readBoxes: 64-bit sizes', () => {
  const large = Buffer.concat([u32(1), Buffer.from('mdat'), Buffer.alloc(4), u32(20), Buffer.alloc(4)]);
  assert.equal(readBoxes(large).boxes, [{ type: 'mdat', start: 0, size: 20, headerSize: 16 }]);
});

test('fragment info: samples and keyframe from trun first-sample flags or tfhd defaults', () => {
  const key = moof(1, 0x02000000);
  assert.equal(readFragmentInfo(key, readBoxes(key).boxes[0]), { samples: 1, keyframe: true });
  const delta = moof(3);
  assert.equal(readFragmentInfo(delta, readBoxes(delta).boxes[0]), { samples: 3, keyframe: false });
});

test('layout of a whole file, and of a file cut inside a fragment', () => {
  const whole = readFmp4Layout(stream);
  assert.equal(whole.init, { start: 0, end: ftyp.length + moov.length });
  assert.equal(whole.fragments.map((f) => [f.samples, f.keyframe]), [[1, true], [3, false]]);
  assert.is(whole.samples, 4);
  const cut = readFmp4Layout(stream.subarray(0, stream.length - 8 - 20));
  assert.is(cut.samples, 1, 'the cut fragment does not count');
  assert.ok(cut.truncated);
});

test('codec string from avcC', () => {
  assert.is(avcCodecString(Buffer.concat([ftyp, moov])), 'avc1.64001f');
  assert.is(avcCodecString(ftyp), undefined);
});

test('segmenter: init, then whole fragments, whatever the chunking; mfra dropped', async () => {
  for (const chunk of [1, 7, 64, stream.length]) {
    const seg = new Fmp4Segmenter();
    const out: Fmp4Segment[] = [];
    seg.on('data', (s: Fmp4Segment) => out.push(s));
    for (let i = 0; i < stream.length; i += chunk) seg.write(stream.subarray(i, i + chunk));
    seg.end();
    await new Promise((r) => seg.once('finish', r));
    assert.equal(out.map((s) => s.kind), ['init', 'fragment', 'fragment']);
    const [init, a, b] = out;
    assert.equal(init.data, Buffer.concat([ftyp, moov]));
    assert.is(init.kind === 'init' && init.codec, 'avc1.64001f');
    assert.equal(a.kind === 'fragment' && [a.samples, a.keyframe, a.data.length], [1, true, moof(1, 0x02000000).length + 18]);
    assert.equal(b.kind === 'fragment' && [b.samples, b.keyframe], [3, false]);
  }
});

test.run();
