import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { childBoxes, codecFromInit, isSyncSampleFlags, parseMoof, readBoxHeader, readFmp4Layout, trexDefaultFlags } from '../../src/encode/mp4-boxes.js';
import { makeFmp4 } from '../serve/helpers/ffmpeg-fixture.js';

function box(type: string, ...payload: Uint8Array[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}
function u32s(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
}
const SYNC = 0x02000000; // depends_on = 2 (I-frame), non_sync = 0
const DELTA = 0x01010000; // depends_on = 1, non_sync = 1

test('sample flags: sync vs non-sync', () => {
  assert.ok(isSyncSampleFlags(SYNC));
  assert.ok(isSyncSampleFlags(0));
  assert.not.ok(isSyncSampleFlags(DELTA));
  assert.not.ok(isSyncSampleFlags(0x00010000));
});

test('readBoxHeader: 32-bit, 64-bit and incomplete headers', () => {
  const b = box('free', Buffer.alloc(4));
  assert.equal(readBoxHeader(b, 0), { type: 'free', start: 0, payload: 8, end: 12 });
  assert.is(readBoxHeader(b.subarray(0, 6), 0), null);
  const big = Buffer.concat([u32s(1), Buffer.from('mdat'), u32s(0, 20), Buffer.alloc(4)]);
  assert.equal(readBoxHeader(big, 0), { type: 'mdat', start: 0, payload: 16, end: 20 });
});

test('parseMoof: first_sample_flags, per-sample flags, tfhd default, trex default', () => {
  const tfhd = (flags: number, ...rest: number[]) => box('tfhd', u32s(flags, 1, ...rest));
  const moofOf = (...traf: Buffer[]) => box('moof', box('mfhd', u32s(0, 1)), box('traf', ...traf));
  // trun with first_sample_flags (0x004) + data offset (0x001)
  let m = moofOf(tfhd(0x20, DELTA), box('trun', u32s(0x005, 3, 100, SYNC)));
  assert.equal(parseMoof(m, readBoxHeader(m, 0)!), { samples: 3, startsWithKeyframe: true, baseDecodeTime: null });
  // per-sample duration+size+flags (0x700)
  m = moofOf(tfhd(0), box('trun', u32s(0x701, 2, 100, 512, 40, DELTA, 512, 40, SYNC)));
  assert.is(parseMoof(m, readBoxHeader(m, 0)!).startsWithKeyframe, false);
  // tfhd default flags only
  m = moofOf(tfhd(0x20, SYNC), box('trun', u32s(0x001, 1, 100)));
  assert.is(parseMoof(m, readBoxHeader(m, 0)!).startsWithKeyframe, true);
  // tfhd with duration+size defaults before default flags
  m = moofOf(tfhd(0x38, 512, 40, DELTA), box('tfdt', u32s(0, 1234)), box('trun', u32s(0x001, 1, 100)));
  assert.equal(parseMoof(m, readBoxHeader(m, 0)!), { samples: 1, startsWithKeyframe: false, baseDecodeTime: 1234 });
  // nothing in the moof: trex default from the init segment
  m = moofOf(tfhd(0), box('trun', u32s(0x001, 1, 100)));
  assert.is(parseMoof(m, readBoxHeader(m, 0)!).startsWithKeyframe, null);
  const init = Buffer.concat([box('ftyp', Buffer.from('isom')), box('moov', box('mvex', box('trex', u32s(0, 1, 1, 0, 0, SYNC))))]);
  assert.equal([...trexDefaultFlags(init)], [[1, SYNC]]);
  assert.is(parseMoof(m, readBoxHeader(m, 0)!, trexDefaultFlags(init)).startsWithKeyframe, true);
});

test('readFmp4Layout: complete fragments of a whole file, and of one cut inside a fragment', () => {
  const moofOf = (count: number, first: number) =>
    box('moof', box('mfhd', u32s(0, 1)), box('traf', box('tfhd', u32s(0x20, 1, DELTA)), box('trun', u32s(0x005, count, 0, first))));
  const head = Buffer.concat([box('ftyp', Buffer.from('isom')), box('moov', box('mvhd', Buffer.alloc(20)))]);
  const file = Buffer.concat([head, moofOf(1, SYNC), box('mdat', Buffer.alloc(10)), moofOf(3, DELTA), box('mdat', Buffer.alloc(30)), box('mfra', Buffer.alloc(8))]);
  const whole = readFmp4Layout(file);
  assert.equal(whole.types, ['ftyp', 'moov', 'moof', 'mdat', 'moof', 'mdat', 'mfra']);
  assert.equal(whole.fragments.map((f) => [f.samples, f.startsWithKeyframe]), [[1, true], [3, false]]);
  assert.is(whole.samples, 4);
  assert.is(whole.truncated, false);
  const cut = readFmp4Layout(file.subarray(0, file.length - 16 - 20)); // inside the second mdat
  assert.equal(cut.types, ['ftyp', 'moov', 'moof', 'mdat', 'moof']);
  assert.is(cut.samples, 1, 'the cut fragment does not count');
  assert.ok(cut.truncated);
});

test('ffmpeg output: codec string, and moofs at GOP starts are keyframes', async () => {
  const mp4 = await makeFmp4({ frames: 32, gop: 8, fragDurationUs: 0 });
  const top = childBoxes(mp4, 0, mp4.length);
  assert.equal(top.slice(0, 2).map((b) => b.type), ['ftyp', 'moov']);
  const init = mp4.subarray(0, top[1].end);
  assert.match(codecFromInit(init) ?? '', /^avc1\.[0-9a-f]{6}$/);
  const moofs = top.filter((b) => b.type === 'moof');
  assert.is(moofs.length, 4);
  for (const m of moofs) {
    const info = parseMoof(mp4, m, trexDefaultFlags(init));
    assert.is(info.samples, 8);
    assert.is(info.startsWithKeyframe, true);
  }
});

test.run();
