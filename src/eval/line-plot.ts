/** A line chart as a PNG: one metric over seconds of video, one line per policy, with a legend. */
import { Canvas, type Colour } from './png.js';
import { drawText, textWidth } from './bitmap-font.js';

export interface Series {
  label: string;
  /** [x, y] points; NaN y values break the line. */
  points: [number, number][];
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Fixed y range; default: the data's range with a margin. */
  yRange?: [number, number];
  /** A horizontal reference line (e.g. the training data's mean speed) and its label. */
  reference?: { y: number; label: string };
}

export const PALETTE: Colour[] = [
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [148, 103, 189],
  [255, 127, 14],
  [23, 190, 207],
  [140, 86, 75],
];

/** 1, 2 or 5 times a power of ten, so that about `count` ticks cover the span. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function format(v: number, step: number): string {
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(4, digits));
}

export function linePlot(series: Series[], options: PlotOptions): Buffer {
  const W = options.width ?? 760;
  const H = options.height ?? 400;
  const left = 64;
  const right = 180;
  const top = 34;
  const bottom = 44;
  const canvas = new Canvas(W, H);
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
  if (options.reference) ys.push(options.reference.y);
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs, x0 + 1) : 1;
  let [y0, y1] = options.yRange ?? [ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1];
  if (!options.yRange) {
    const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 1;
    y0 -= pad;
    y1 += pad;
  }
  const px = (x: number): number => left + ((W - left - right) * (x - x0)) / (x1 - x0);
  const py = (y: number): number => H - bottom - ((H - top - bottom) * (y - y0)) / (y1 - y0);
  const grey: Colour = [225, 225, 225];
  const black: Colour = [0, 0, 0];

  const ys0 = niceStep(y1 - y0, 6);
  for (let v = Math.ceil(y0 / ys0) * ys0; v <= y1 + 1e-12; v += ys0) {
    canvas.line(left, py(v), W - right, py(v), grey);
    const label = format(v, ys0);
    drawText(canvas, left - 6 - textWidth(label), py(v) - 3, label, black);
  }
  const xs0 = niceStep(x1 - x0, 8);
  for (let v = Math.ceil(x0 / xs0) * xs0; v <= x1 + 1e-12; v += xs0) {
    canvas.line(px(v), H - bottom, px(v), H - bottom + 4, black);
    const label = format(v, xs0);
    drawText(canvas, px(v) - textWidth(label) / 2, H - bottom + 8, label, black);
  }
  canvas.rect(left, top, W - right, H - bottom, black);
  if (options.reference) {
    const ry = py(options.reference.y);
    for (let x = left; x < W - right; x += 8) canvas.line(x, ry, Math.min(x + 4, W - right), ry, [120, 120, 120]);
    drawText(canvas, left + 4, ry - 10, options.reference.label, [90, 90, 90]);
  }
  series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length];
    let prev: [number, number] | null = null;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y)) {
        prev = null;
        continue;
      }
      if (prev) canvas.line(px(prev[0]), py(prev[1]), px(x), py(y), c, 2);
      else canvas.fill(px(x) - 1, py(y) - 1, px(x) + 1, py(y) + 1, c);
      prev = [x, y];
    }
    const ly = top + 8 + i * 16;
    canvas.line(W - right + 12, ly + 3, W - right + 30, ly + 3, c, 3);
    drawText(canvas, W - right + 36, ly, s.label.slice(0, 23), black);
  });
  drawText(canvas, left, 10, options.title, black, 1);
  drawText(canvas, left + (W - left - right) / 2 - textWidth(options.xLabel) / 2, H - 16, options.xLabel, black);
  drawText(canvas, 6, top - 14, options.yLabel, black);
  return canvas.toPng();
}
