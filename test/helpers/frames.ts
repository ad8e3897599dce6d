import * as assert from 'uvu/assert';

/** Largest byte difference between two frame lists of the same length and sizes. */
export function maxByteDifference(a: Uint8Array[], b: Uint8Array[]): number {
  assert.is(a.length, b.length);
  let max = 0;
  a.forEach((f, i) => f.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i][j])))));
  return max;
}
