/**
 * The prompt's ground truth: where each object is at any frame (the opening layout of palette.json
 * moving in a straight line and bouncing off the walls, closed form), and the frames themselves,
 * drawn exactly as tools/data/scenes.py draws the training clips.
 */
import type { PromptScene, SceneSpec } from './scene-spec.js';

export interface ObjectState {
  x: number;
  y: number;
  vx: number;
  vy: number;
}

/** Reflection between lo and hi, closed form (scenes.py `_bounce`). */
function bounce(p0: number, v: number, lo: number, hi: number, t: number): [number, number] {
  const span = hi - lo;
  let u = (p0 - lo + v * t) % (2 * span);
  if (u < 0) u += 2 * span;
  return u <= span ? [lo + u, v] : [lo + 2 * span - u, -v];
}

export function objectStates(scene: PromptScene, spec: SceneSpec, frame: number): ObjectState[] {
  if (scene.objects.length === 0) return [];
  const layout = spec.layouts.get(scene.objects.length);
  if (!layout) throw new RangeError(`no opening layout for ${scene.objects.length} objects`);
  const r = spec.openingRadius;
  return layout.map(([x0, y0, vx0, vy0]) => {
    const [x, vx] = bounce(x0, vx0, r, spec.frameSize - r, frame);
    const [y, vy] = bounce(y0, vy0, r, spec.frameSize - r, frame);
    return { x, y, vx, vy };
  });
}

/** Signed distance of pixel offset (dx, dy) to a shape of radius r (scenes.py's geometry). */
export function shapeDistance(shape: string, dx: number, dy: number, r: number, spec: SceneSpec): number {
  if (shape === 'circle') return Math.hypot(dx, dy) - r;
  if (shape === 'square') return Math.max(Math.abs(dx), Math.abs(dy)) - spec.squareHalf * r;
  const big = spec.triangleCircumradius * r;
  const n2 = 0.8660254 * dx - 0.5 * dy;
  const n3 = -0.8660254 * dx - 0.5 * dy;
  return Math.max(dy, n2, n3) - big / 2;
}

/** RGB24 frames [start, start + count) of the prompt's ground-truth video. */
export function renderGroundTruth(scene: PromptScene, spec: SceneSpec, start: number, count: number): Uint8Array[] {
  const n = spec.frameSize;
  const bg = spec.backgrounds.get(scene.background)!;
  const colours = scene.objects.map((o) => spec.objects.get(o.colour)!);
  const frames: Uint8Array[] = [];
  for (let f = start; f < start + count; f++) {
    const states = objectStates(scene, spec, f);
    const rgb = new Uint8Array(n * n * 3);
    for (let py = 0; py < n; py++) {
      for (let px = 0; px < n; px++) {
        let c0 = bg[0];
        let c1 = bg[1];
        let c2 = bg[2];
        for (let k = 0; k < states.length; k++) {
          const d = shapeDistance(scene.objects[k].shape, px + 0.5 - states[k].x, py + 0.5 - states[k].y, spec.openingRadius, spec);
          const a = Math.min(1, Math.max(0, 0.5 - d));
          if (a > 0) {
            c0 = c0 * (1 - a) + colours[k][0] * a;
            c1 = c1 * (1 - a) + colours[k][1] * a;
            c2 = c2 * (1 - a) + colours[k][2] * a;
          }
        }
        const i = (py * n + px) * 3;
        rgb[i] = Math.round(c0);
        rgb[i + 1] = Math.round(c1);
        rgb[i + 2] = Math.round(c2);
      }
    }
    frames.push(rgb);
  }
  return frames;
}
