import * as assert from 'uvu/assert';

/** Largest byte difference between two frame lists of the same length and sizes. */
export function maxByteDifference(a: Uint8Array[], b: Uint8Array[]): number {
  assert.is(a.length, b.length);
  let max = 0;
  a.forEach((f, i) => f.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i][j])))));
  return max;
}

/** `base` with `over`'s pixels wherever `base` shows the background colour: `over`'s objects pasted in beside its own. */
export function pasteObjects(base: Uint8Array, over: Uint8Array, background: readonly number[]): Uint8Array {
  const out = base.slice();
  for (let p = 0; p < out.length; p += 3) {
    if (out[p] === background[0] && out[p + 1] === background[1] && out[p + 2] === background[2]) out.set(over.subarray(p, p + 3), p);
  }
  return out;
}

/** A size x size frame of `background` with a side x side square of `colour` whose top-left pixel is (x0, y0). */
export function squareFrame(size: number, background: readonly number[], colour: readonly number[], x0: number, y0: number, side: number): Uint8Array {
  const rgb = new Uint8Array(size * size * 3).map((_, i) => background[i % 3]);
  for (let y = y0; y < y0 + side; y++) for (let x = x0; x < x0 + side; x++) rgb.set(colour, (y * size + x) * 3);
  return rgb;
}
