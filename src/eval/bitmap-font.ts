/** A 5x7 bitmap font (lowercase drawn as capitals, digits, a few signs) for plot labels. */
import type { Canvas, Colour } from './png.js';

// Each glyph: 7 rows, 5 bits each (bit 4 = leftmost column).
const GLYPHS: Record<string, number[]> = {
  a: [14, 17, 17, 31, 17, 17, 17], b: [30, 17, 17, 30, 17, 17, 30], c: [14, 17, 16, 16, 16, 17, 14],
  d: [30, 17, 17, 17, 17, 17, 30], e: [31, 16, 16, 30, 16, 16, 31], f: [31, 16, 16, 30, 16, 16, 16],
  g: [14, 17, 16, 23, 17, 17, 15], h: [17, 17, 17, 31, 17, 17, 17], i: [14, 4, 4, 4, 4, 4, 14],
  j: [7, 2, 2, 2, 2, 18, 12], k: [17, 18, 20, 24, 20, 18, 17], l: [16, 16, 16, 16, 16, 16, 31],
  m: [17, 27, 21, 21, 17, 17, 17], n: [17, 17, 25, 21, 19, 17, 17], o: [14, 17, 17, 17, 17, 17, 14],
  p: [30, 17, 17, 30, 16, 16, 16], q: [14, 17, 17, 17, 21, 18, 13], r: [30, 17, 17, 30, 20, 18, 17],
  s: [15, 16, 16, 14, 1, 1, 30], t: [31, 4, 4, 4, 4, 4, 4], u: [17, 17, 17, 17, 17, 17, 14],
  v: [17, 17, 17, 17, 17, 10, 4], w: [17, 17, 17, 21, 21, 21, 10], x: [17, 17, 10, 4, 10, 17, 17],
  y: [17, 17, 10, 4, 4, 4, 4], z: [31, 1, 2, 4, 8, 16, 31],
  '0': [14, 17, 19, 21, 25, 17, 14], '1': [4, 12, 4, 4, 4, 4, 14], '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14], '4': [2, 6, 10, 18, 31, 2, 2], '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14], '7': [31, 1, 2, 4, 8, 8, 8], '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  ' ': [0, 0, 0, 0, 0, 0, 0], '.': [0, 0, 0, 0, 0, 12, 12], ',': [0, 0, 0, 0, 12, 4, 8],
  '-': [0, 0, 0, 31, 0, 0, 0], '+': [0, 4, 4, 31, 4, 4, 0], ':': [0, 12, 12, 0, 12, 12, 0],
  '/': [1, 1, 2, 4, 8, 16, 16], '(': [2, 4, 8, 8, 8, 4, 2], ')': [8, 4, 2, 2, 2, 4, 8],
  '%': [24, 25, 2, 4, 8, 19, 3], '=': [0, 0, 31, 0, 31, 0, 0], _: [0, 0, 0, 0, 0, 0, 31],
  '>': [8, 4, 2, 1, 2, 4, 8], '<': [2, 4, 8, 16, 8, 4, 2],
};

export const GLYPH_WIDTH = 6; // 5 columns + 1 space
export const GLYPH_HEIGHT = 7;

export function textWidth(text: string, scale = 1): number {
  return text.length * GLYPH_WIDTH * scale;
}

/** Draws text with its top-left corner at (x, y); unknown characters draw as a box. */
export function drawText(canvas: Canvas, x: number, y: number, text: string, colour: Colour, scale = 1): void {
  let cx = Math.round(x);
  for (const ch of text.toLowerCase()) {
    const rows = GLYPHS[ch] ?? [31, 17, 17, 17, 17, 17, 31];
    for (let r = 0; r < 7; r++) {
      for (let c = 0; c < 5; c++) {
        if (rows[r] & (1 << (4 - c))) canvas.fill(cx + c * scale, y + r * scale, cx + c * scale + scale - 1, y + r * scale + scale - 1, colour);
      }
    }
    cx += GLYPH_WIDTH * scale;
  }
}
