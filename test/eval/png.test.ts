/** The PNG encoder writes a valid file (signature, chunk CRCs) that decodes back to the pixels. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inflateSync } from 'node:zlib';
import { Canvas, encodePng } from '../../src/eval/png.js';
import { linePlot } from '../../src/eval/line-plot.js';

function chunks(png: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 8;
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    out.set(png.toString('ascii', at + 4, at + 8), png.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  return out;
}

test('round trip: IHDR size, filtered rows inflate to the pixels', () => {
  const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) & 255);
  const png = encodePng(5, 3, rgb);
  assert.equal([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const c = chunks(png);
  assert.is(c.get('IHDR')!.readUInt32BE(0), 5);
  assert.is(c.get('IHDR')!.readUInt32BE(4), 3);
  const raw = inflateSync(c.get('IDAT')!);
  for (let y = 0; y < 3; y++) {
    assert.is(raw[y * 16], 0);
    assert.equal([...raw.subarray(y * 16 + 1, y * 16 + 16)], [...rgb.subarray(y * 15, y * 15 + 15)]);
  }
});

test('a line plot draws its series in the legend colours', () => {
  const png = linePlot([{ label: 'a', points: [[0, 0], [1, 1], [2, Number.NaN], [3, 0.5]] }], { title: 't', xLabel: 'x', yLabel: 'y' });
  const raw = inflateSync(chunks(png).get('IDAT')!);
  let blue = 0;
  for (let i = 1; i + 2 < raw.length; i += 3) if (raw[i] === 31 && raw[i + 1] === 119 && raw[i + 2] === 180) blue++;
  assert.ok(blue > 100, `blue pixels ${blue}`);
  assert.ok(new Canvas(2, 2).toPng().length > 40);
});

test.run();
