/**
 * A colour-segmentation detector for decoded demo frames: every pixel is labelled with the nearest
 * palette colour (the 7 object colours and the prompt's background) when it lies within
 * `matchDistance` of it; each object colour's largest 4-connected component, if at least `minArea`
 * pixels, is one detected object (its area and centroid); the colour's other components of at least
 * `minArea` pixels count as copies of it (an object drawn twice). The border gradient is the mean RGB
 * gradient magnitude on the borders of the detected prompted objects: the pixels of such an object
 * with a 4-neighbour outside it. Each detected object's outline is scored against the trained shapes
 * (shape-match.ts).
 */
import type { Rgb, SceneSpec } from '../scene/scene-spec.js';
import { shapeScores, type ShapeScores } from './shape-match.js';

export interface DetectorOptions {
  /** RGB distance under which a pixel takes a palette colour. */
  matchDistance: number;
  /** Pixels an object's component needs to count as present. */
  minArea: number;
  /** RGB distance under which a pixel counts as clean (purity). */
  pureDistance: number;
}

export const defaultDetectorOptions: DetectorOptions = { matchDistance: 80, minArea: 12, pureDistance: 40 };

export interface ObjectPart {
  cx: number;
  cy: number;
  area: number;
}

export interface DetectedObject {
  colour: string;
  area: number;
  cx: number;
  cy: number;
  /** Intersection over union of the object's pixels with each trained shape of its area at its centroid. */
  shapes: ShapeScores;
  /** Components of this colour of at least minArea pixels, this one included (2: the object drawn twice). */
  copies: number;
  /** Those components' centroids and areas, largest first (the first is this object's own). */
  parts: ObjectPart[];
  /** The object's pixels reach the frame's outermost row or column (a drawn object only touches it at a bounce). */
  atEdge: boolean;
}

export interface FrameDetection {
  /** Present objects by colour (any of the palette's object colours). */
  objects: Map<string, DetectedObject>;
  /** Mean colour of the pixels not labelled as an object. */
  backgroundMean: Rgb;
  /** Fraction of pixels within pureDistance of the background or a prompted object colour. */
  purity: number;
  /** Variance of the 4-neighbour Laplacian of luminance (a focus measure; noise raises it too). */
  laplacianVariance: number;
  /**
   * Mean RGB gradient magnitude (central differences, Euclidean over the channels) over the border
   * pixels of the detected prompted objects; NaN when no prompted object is detected. A blurred
   * edge spreads its step over more pixels, so it scores lower than a sharp one; unlike the
   * Laplacian variance, noise away from the objects does not raise it.
   */
  borderGradient: number;
}

function dist2(r: number, g: number, b: number, c: Rgb): number {
  const dr = r - c[0];
  const dg = g - c[1];
  const db = b - c[2];
  return dr * dr + dg * dg + db * db;
}

export function detectFrame(
  rgb: Uint8Array,
  size: number,
  spec: SceneSpec,
  background: string,
  promptColours: readonly string[],
  options: DetectorOptions = defaultDetectorOptions,
): FrameDetection {
  const names = [...spec.objects.keys()];
  const palette = names.map((n) => spec.objects.get(n)!);
  const bg = spec.backgrounds.get(background)!;
  const prompted = palette.filter((_, i) => promptColours.includes(names[i]));
  const n = size * size;
  const label = new Int16Array(n).fill(-1); // -1 none / background, i = object colour i
  const match2 = options.matchDistance * options.matchDistance;
  const pure2 = options.pureDistance * options.pureDistance;
  let pure = 0;
  let bgSum0 = 0;
  let bgSum1 = 0;
  let bgSum2 = 0;
  let bgCount = 0;
  for (let p = 0; p < n; p++) {
    const r = rgb[p * 3];
    const g = rgb[p * 3 + 1];
    const b = rgb[p * 3 + 2];
    let best = dist2(r, g, b, bg);
    let bestIndex = -1;
    for (let i = 0; i < palette.length; i++) {
      const d = dist2(r, g, b, palette[i]);
      if (d < best) {
        best = d;
        bestIndex = i;
      }
    }
    if (bestIndex >= 0 && best <= match2) label[p] = bestIndex;
    else {
      bgSum0 += r;
      bgSum1 += g;
      bgSum2 += b;
      bgCount++;
    }
    if (dist2(r, g, b, bg) <= pure2 || prompted.some((c) => dist2(r, g, b, c) <= pure2)) pure++;
  }

  const objects = new Map<string, DetectedObject>();
  const component = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  type Component = Omit<DetectedObject, 'shapes' | 'copies' | 'parts' | 'atEdge'> & { id: number; box: { x0: number; y0: number; x1: number; y1: number } };
  const best = new Map<number, Component>();
  const parts = new Map<number, ObjectPart[]>();
  let components = 0;
  for (let start = 0; start < n; start++) {
    const li = label[start];
    if (li < 0 || component[start] >= 0) continue;
    const id = components++;
    let top = 0;
    stack[top++] = start;
    component[start] = id;
    let area = 0;
    let sx = 0;
    let sy = 0;
    const box = { x0: size, y0: size, x1: -1, y1: -1 };
    while (top > 0) {
      const p = stack[--top];
      const x = p % size;
      const y = (p - x) / size;
      area++;
      box.x0 = Math.min(box.x0, x);
      box.x1 = Math.max(box.x1, x);
      box.y0 = Math.min(box.y0, y);
      box.y1 = Math.max(box.y1, y);
      sx += x + 0.5;
      sy += y + 0.5;
      const push = (q: number): void => {
        if (component[q] < 0 && label[q] === li) {
          component[q] = id;
          stack[top++] = q;
        }
      };
      if (x > 0) push(p - 1);
      if (x < size - 1) push(p + 1);
      if (y > 0) push(p - size);
      if (y < size - 1) push(p + size);
    }
    if (area >= options.minArea) {
      const list = parts.get(li) ?? [];
      list.push({ cx: sx / area, cy: sy / area, area });
      parts.set(li, list);
    }
    const prev = best.get(li);
    if (!prev || area > prev.area) best.set(li, { colour: names[li], area, cx: sx / area, cy: sy / area, id, box });
  }
  for (const [li, { id, box, ...o }] of best) {
    if (o.area < options.minArea) continue;
    const shapes = shapeScores({ labels: component, id, size, area: o.area, cx: o.cx, cy: o.cy, box }, spec);
    const atEdge = box.x0 === 0 || box.y0 === 0 || box.x1 === size - 1 || box.y1 === size - 1;
    const own = parts.get(li)!.sort((a, b) => b.area - a.area);
    objects.set(o.colour, { ...o, shapes, copies: own.length, parts: own, atEdge });
  }
  const promptedIds = [...best.values()].filter((o) => objects.has(o.colour) && promptColours.includes(o.colour)).map((o) => o.id);

  let lapSum = 0;
  let lapSq = 0;
  let lapN = 0;
  const lum = (p: number): number => 0.299 * rgb[p * 3] + 0.587 * rgb[p * 3 + 1] + 0.114 * rgb[p * 3 + 2];
  for (let y = 1; y < size - 1; y++) {
    for (let x = 1; x < size - 1; x++) {
      const p = y * size + x;
      const l = lum(p - 1) + lum(p + 1) + lum(p - size) + lum(p + size) - 4 * lum(p);
      lapSum += l;
      lapSq += l * l;
      lapN++;
    }
  }
  const lapMean = lapSum / lapN;
  return {
    objects,
    backgroundMean: bgCount > 0 ? [bgSum0 / bgCount, bgSum1 / bgCount, bgSum2 / bgCount] : [0, 0, 0],
    purity: pure / n,
    laplacianVariance: lapSq / lapN - lapMean * lapMean,
    borderGradient: borderGradient(rgb, size, component, promptedIds),
  };
}

/** Mean RGB gradient magnitude over the pixels of the given components that touch a pixel outside them. */
function borderGradient(rgb: Uint8Array, size: number, component: Int32Array, ids: readonly number[]): number {
  if (ids.length === 0) return Number.NaN;
  let sum = 0;
  let count = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      const id = component[p];
      if (id < 0 || !ids.includes(id)) continue;
      const border =
        (x > 0 && component[p - 1] !== id) ||
        (x < size - 1 && component[p + 1] !== id) ||
        (y > 0 && component[p - size] !== id) ||
        (y < size - 1 && component[p + size] !== id);
      if (!border) continue;
      // central differences, one-sided at the frame's edge
      const left = x > 0 ? p - 1 : p;
      const right = x < size - 1 ? p + 1 : p;
      const up = y > 0 ? p - size : p;
      const down = y < size - 1 ? p + size : p;
      const sx = right - left === 2 ? 0.5 : 1;
      const sy = down - up === 2 * size ? 0.5 : 1;
      let g2 = 0;
      for (let c = 0; c < 3; c++) {
        const gx = (rgb[right * 3 + c] - rgb[left * 3 + c]) * sx;
        const gy = (rgb[down * 3 + c] - rgb[up * 3 + c]) * sy;
        g2 += gx * gx + gy * gy;
      }
      sum += Math.sqrt(g2);
      count++;
    }
  }
  return sum / count;
}
