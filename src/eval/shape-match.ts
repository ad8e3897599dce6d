/**
 * How much a detected object looks like each of the trained shapes. The object's pixels (one
 * connected component of the detector) are compared with each shape drawn exactly as the training
 * data draws it (axis-aligned square, upward triangle), centred on the object's centroid and sized to
 * the object's area: the score is the intersection over union of the two pixel sets. A clean shape
 * scores about 0.9 against its own kind and less against the others; a ragged blob scores lower
 * against all three. Size and place do not count, only the outline.
 */
import { shapeDistance } from '../scene/ground-truth.js';
import type { SceneSpec, ShapeName } from '../scene/scene-spec.js';

/** Area of a shape of radius r, in r^2 (the geometry of scenes.py: square half-side and triangle circumradius scale r). */
export function shapeAreaPerRadius2(shape: ShapeName, spec: SceneSpec): number {
  if (shape === 'circle') return Math.PI;
  if (shape === 'square') return (2 * spec.squareHalf) ** 2;
  return ((3 * Math.sqrt(3)) / 4) * spec.triangleCircumradius ** 2;
}

/** A component of a label image: the pixels p with labels[p] === id, inside the box [x0, x1] x [y0, y1]. */
export interface ComponentRef {
  labels: Int32Array;
  id: number;
  size: number;
  area: number;
  cx: number;
  cy: number;
  box: { x0: number; y0: number; x1: number; y1: number };
}

export type ShapeScores = Record<ShapeName, number>;

/** Intersection over union of the component with each shape of the same area at its centroid. */
export function shapeScores(c: ComponentRef, spec: SceneSpec): ShapeScores {
  const scores = {} as ShapeScores;
  for (const shape of spec.shapes) {
    const r = Math.sqrt(c.area / shapeAreaPerRadius2(shape, spec));
    // every shape lies within its circumradius: 1 r (circle), sqrt(2) half-side (square), the triangle's circumradius
    const reach = r * Math.max(1, Math.SQRT2 * spec.squareHalf, spec.triangleCircumradius) + 1;
    const x0 = Math.max(0, Math.min(c.box.x0, Math.floor(c.cx - reach)));
    const x1 = Math.min(c.size - 1, Math.max(c.box.x1, Math.ceil(c.cx + reach)));
    const y0 = Math.max(0, Math.min(c.box.y0, Math.floor(c.cy - reach)));
    const y1 = Math.min(c.size - 1, Math.max(c.box.y1, Math.ceil(c.cy + reach)));
    let both = 0;
    let either = 0;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const inObject = c.labels[y * c.size + x] === c.id;
        const inShape = shapeDistance(shape, x + 0.5 - c.cx, y + 0.5 - c.cy, r, spec) <= 0;
        if (inObject && inShape) both++;
        if (inObject || inShape) either++;
      }
    }
    scores[shape] = either > 0 ? both / either : 0;
  }
  return scores;
}

/** The shape the component matches best (the first of the spec's order on a tie). */
export function bestShape(scores: ShapeScores, spec: SceneSpec): ShapeName {
  return spec.shapes.reduce((best, s) => (scores[s] > scores[best] ? s : best), spec.shapes[0]);
}
