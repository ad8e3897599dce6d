import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeSpaceToDepth, latentToFrames, SpaceToDepthDecoder } from '../../src/decode/space-to-depth.js';

function randomFrames(count: number, width: number, height: number, seed: number): Uint8Array[] {
  let s = seed;
  return Array.from({ length: count }, () => {
    const f = new Uint8Array(width * height * 3);
    for (let i = 0; i < f.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      f[i] = s >>> 24;
    }
    return f;
  });
}

test('decode(encode(frames)) is exactly the frames', async () => {
  for (const factor of [1, 2, 4]) {
    const width = 8 * factor;
    const height = 4 * factor;
    const frames = randomFrames(3, width, height, factor);
    const latent = encodeSpaceToDepth(frames, width, height, factor);
    assert.is(latent.length, 3 * factor * factor * 3 * 4 * 8);
    const decoder = new SpaceToDepthDecoder(factor, 4, 8);
    assert.is(decoder.width, width);
    assert.is(decoder.height, height);
    const back = await decoder.decode(latent);
    assert.is(back.length, 3);
    for (let f = 0; f < 3; f++) assert.ok(Buffer.from(back[f]).equals(Buffer.from(frames[f])), `factor ${factor} frame ${f}`);
  }
});

test('channel layout: c = (dy*factor + dx)*3 + rgb, value = byte/127.5 - 1', () => {
  const factor = 2;
  const width = 4;
  const height = 2;
  const frame = new Uint8Array(width * height * 3);
  // pixel (y=1, x=3), green = 255: latent pixel (h=0, w=1), dy=1, dx=1 -> c = (1*2+1)*3 + 1 = 10
  frame[(1 * width + 3) * 3 + 1] = 255;
  const latent = encodeSpaceToDepth([frame], width, height, factor);
  const plane = 1 * 2; // latentHeight 1, latentWidth 2
  for (let c = 0; c < 12; c++) {
    for (let p = 0; p < plane; p++) {
      const expected = c === 10 && p === 1 ? 1 : -1;
      assert.is(latent[c * plane + p], expected, `c ${c} p ${p}`);
    }
  }
});

test('values are clamped to bytes and rounded to nearest', () => {
  const latent = new Float32Array(3).fill(0);
  latent[0] = -5;
  latent[1] = 5;
  latent[2] = 0; // (0 + 1) * 127.5 = 127.5 -> 128
  const [frame] = latentToFrames(latent, 1, 1, 1);
  assert.equal([...frame], [0, 255, 128]);
});

test('frame-major [C, F, H, W] order across frames', () => {
  const frames = randomFrames(2, 2, 2, 7);
  const latent = encodeSpaceToDepth(frames, 2, 2, 1);
  // c = rgb with factor 1; latent[c, f, y, x]
  assert.is(latent[(1 * 2 + 1) * 4 + 3], Math.fround(frames[1][3 * 3 + 1] / 127.5 - 1));
});

test.run();
