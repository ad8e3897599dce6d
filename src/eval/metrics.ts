/**
 * Per-second metrics of a generated video against its prompt's ground truth. Frames are fed one at
 * a time (`add`), so an hour of video never sits in memory; `seconds()` returns one row per
 * completed second of video.
 */
import { detectFrame, defaultDetectorOptions, type DetectorOptions, type FrameDetection } from './detector.js';
import { objectStates } from '../scene/ground-truth.js';
import { bestShape } from './shape-match.js';
import type { PromptScene, SceneSpec, ShapeName } from '../scene/scene-spec.js';

export interface SecondMetrics {
  /** Second of video, from 0. */
  second: number;
  /** Frames measured in this second (primed frames are skipped). */
  frames: number;
  /** Mean fraction of the prompted colours detected. */
  colourFidelity: number;
  /** Mean number of objects detected (any palette colour). */
  objectCount: number;
  /** Mean number of detected objects whose colour the prompt did not ask for. */
  extraObjects: number;
  /** Extra copies of the prompted objects per frame: a prompted colour's components beyond its largest (an object drawn twice: 1). */
  duplicates: number;
  /**
   * Share of the detected prompted objects that reach the frame's edge (outermost row or column): the training
   * data's objects bounce off the walls whole, so they touch the edge only at a bounce; NaN if none was detected.
   */
  edgeContact: number;
  /**
   * Mean centroid speed of prompted objects, pixels/frame, measured over a stride of SPEED_STRIDE
   * frames (a shorter stride measures the detector's jitter more than the motion), only where the
   * object is drawn once in both frames: with a copy, the largest component may be either one, and
   * its centroid jumping between them is not motion; NaN if none.
   */
  speed: number;
  /** speed / the training data's mean speed. */
  speedRatio: number;
  /** Mean distance of detected prompted objects from their ground-truth position, pixels (NaN if none). */
  positionError: number;
  /** RGB distance of the mean non-object colour from the prompted background. */
  backgroundDrift: number;
  /** Fraction of pixels within the detector's pure distance of the prompted palette. */
  purity: number;
  /** Variance of the Laplacian of luminance (whole frame). */
  sharpness: number;
  /** Mean RGB gradient magnitude on the borders of the detected prompted objects (NaN if none was detected). */
  borderSharpness: number;
  /**
   * Mean intersection over union of the detected prompted objects with their prompted shape (same area,
   * same centroid: the outline only); NaN if none was detected.
   */
  shapeMatch: number;
  /** Share of the detected prompted objects whose outline matches their prompted shape best of the trained shapes (NaN if none). */
  shapeAccuracy: number;
  /**
   * Of the detected prompted objects whose prompt gives another object a different shape, the share whose
   * outline best matches such a shape: a shape word read but bound to the wrong colour (NaN if none).
   */
  shapeSwapped: number;
}

/**
 * Whether the prompted objects are there in the first measured second: every prompted colour
 * detected (the detector's present rule: a component of at least minArea pixels) in at least
 * OPENING_PRESENT_SHARE of that second's frames.
 */
export interface OpeningCheck {
  /** First frame of the checked second: 0, or the first generated frame after a primed opening. */
  fromFrame: number;
  /** Frames checked (fps, fewer if the video is shorter). */
  frames: number;
  /** Prompted colour -> share of the checked frames it was detected in. */
  colourShares: Record<string, number>;
  present: boolean;
}

/** A prompted colour counts as present in the opening second when detected in at least this share of its frames. */
export const OPENING_PRESENT_SHARE = 0.5;

/** Frames between the two centroids a speed is measured from. */
export const SPEED_STRIDE = 4;

export const METRIC_KEYS = [
  'colourFidelity',
  'objectCount',
  'extraObjects',
  'duplicates',
  'edgeContact',
  'speed',
  'speedRatio',
  'positionError',
  'backgroundDrift',
  'purity',
  'sharpness',
  'borderSharpness',
  'shapeMatch',
  'shapeAccuracy',
  'shapeSwapped',
] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

interface Accumulator {
  frames: number;
  fidelity: number;
  count: number;
  extra: number;
  duplicates: number;
  /** Detected prompted objects: the denominator of the per-object means (edge, position, shapes). */
  prompted: number;
  edge: number;
  speedSum: number;
  speedN: number;
  posSum: number;
  drift: number;
  purity: number;
  sharpness: number;
  borderSum: number;
  borderN: number;
  shapeIou: number;
  shapeRight: number;
  swapped: number;
  swapN: number;
}

const empty = (): Accumulator => ({
  frames: 0, fidelity: 0, count: 0, extra: 0, duplicates: 0, prompted: 0, edge: 0, speedSum: 0, speedN: 0, posSum: 0, drift: 0, purity: 0, sharpness: 0, borderSum: 0, borderN: 0, shapeIou: 0, shapeRight: 0, swapped: 0, swapN: 0,
});

export class VideoMetrics {
  private readonly colours: string[];
  private readonly shapes: ShapeName[];
  /** Per prompted object: the shapes the prompt gives the other objects, its own excluded. */
  private readonly otherShapes: Set<ShapeName>[];
  private readonly rows: SecondMetrics[] = [];
  private acc: Accumulator = empty();
  private accSecond = 0;
  /** The last SPEED_STRIDE detections, oldest first. */
  private history: FrameDetection[] = [];
  private frameIndex = 0;
  /** Frames of the opening second in which each prompted colour was detected. */
  private readonly openingHits: number[];
  private openingFrames = 0;

  constructor(
    private readonly scene: PromptScene,
    private readonly spec: SceneSpec,
    private readonly fps: number,
    /** Frames at the start that were given, not generated (measured as context only). */
    private readonly skipFrames = 0,
    private readonly detector: DetectorOptions = defaultDetectorOptions,
  ) {
    this.colours = scene.objects.map((o) => o.colour);
    this.shapes = scene.objects.map((o) => o.shape);
    this.otherShapes = this.shapes.map((own, k) => new Set(this.shapes.filter((s, j) => j !== k && s !== own)));
    this.openingHits = this.colours.map(() => 0);
  }

  add(rgb: Uint8Array): void {
    const f = this.frameIndex++;
    const second = Math.floor(f / this.fps);
    if (second !== this.accSecond) this.flush();
    this.accSecond = second;
    const det = detectFrame(rgb, this.spec.frameSize, this.spec, this.scene.background, this.colours, this.detector);
    if (f >= this.skipFrames) this.measure(f, det);
    if (f >= this.skipFrames && f < this.skipFrames + this.fps) {
      this.openingFrames++;
      this.colours.forEach((c, k) => {
        if (det.objects.has(c)) this.openingHits[k]++;
      });
    }
    this.history.push(det);
    if (this.history.length > SPEED_STRIDE) this.history.shift();
  }

  private measure(f: number, det: FrameDetection): void {
    const a = this.acc;
    a.frames++;
    let present = 0;
    const truth = objectStates(this.scene, this.spec, f);
    this.colours.forEach((c, k) => {
      const o = det.objects.get(c);
      if (!o) return;
      present++;
      a.prompted++;
      a.duplicates += o.copies - 1;
      if (o.atEdge) a.edge++;
      a.shapeIou += o.shapes[this.shapes[k]];
      const best = bestShape(o.shapes, this.spec);
      if (best === this.shapes[k]) a.shapeRight++;
      if (this.otherShapes[k].size > 0) {
        a.swapN++;
        if (this.otherShapes[k].has(best)) a.swapped++;
      }
      a.posSum += Math.hypot(o.cx - truth[k].x, o.cy - truth[k].y);
      const p = this.history.length === SPEED_STRIDE ? this.history[0].objects.get(c) : undefined;
      if (p && p.copies === 1 && o.copies === 1) {
        a.speedSum += Math.hypot(o.cx - p.cx, o.cy - p.cy) / SPEED_STRIDE;
        a.speedN++;
      }
    });
    a.fidelity += present / this.colours.length;
    a.count += det.objects.size;
    a.extra += [...det.objects.keys()].filter((c) => !this.colours.includes(c)).length;
    const bg = this.spec.backgrounds.get(this.scene.background)!;
    a.drift += Math.hypot(det.backgroundMean[0] - bg[0], det.backgroundMean[1] - bg[1], det.backgroundMean[2] - bg[2]);
    a.purity += det.purity;
    a.sharpness += det.laplacianVariance;
    if (Number.isFinite(det.borderGradient)) {
      a.borderSum += det.borderGradient;
      a.borderN++;
    }
  }

  /** The opening check over the first measured second (frames skipFrames .. skipFrames + fps - 1). */
  opening(): OpeningCheck {
    const frames = this.openingFrames;
    const colourShares = Object.fromEntries(this.colours.map((c, k) => [c, frames > 0 ? this.openingHits[k] / frames : 0]));
    const present = frames > 0 && Object.values(colourShares).every((share) => share >= OPENING_PRESENT_SHARE);
    return { fromFrame: this.skipFrames, frames, colourShares, present };
  }

  private flush(): void {
    const a = this.acc;
    if (a.frames > 0) {
      const speed = a.speedN > 0 ? a.speedSum / a.speedN : Number.NaN;
      this.rows.push({
        second: this.accSecond,
        frames: a.frames,
        colourFidelity: a.fidelity / a.frames,
        objectCount: a.count / a.frames,
        extraObjects: a.extra / a.frames,
        duplicates: a.duplicates / a.frames,
        edgeContact: a.prompted > 0 ? a.edge / a.prompted : Number.NaN,
        speed,
        speedRatio: speed / this.spec.speedMean,
        positionError: a.prompted > 0 ? a.posSum / a.prompted : Number.NaN,
        backgroundDrift: a.drift / a.frames,
        purity: a.purity / a.frames,
        sharpness: a.sharpness / a.frames,
        borderSharpness: a.borderN > 0 ? a.borderSum / a.borderN : Number.NaN,
        shapeMatch: a.prompted > 0 ? a.shapeIou / a.prompted : Number.NaN,
        shapeAccuracy: a.prompted > 0 ? a.shapeRight / a.prompted : Number.NaN,
        shapeSwapped: a.swapN > 0 ? a.swapped / a.swapN : Number.NaN,
      });
    }
    this.acc = empty();
  }

  /** Rows of the completed seconds (call `finish` first to include a last partial second). */
  seconds(): SecondMetrics[] {
    return [...this.rows];
  }

  finish(): SecondMetrics[] {
    this.flush();
    this.accSecond++;
    return this.seconds();
  }
}

export interface PromptCheck {
  ok: boolean;
  /** Share of the prompted colours seen, over the measured frames. */
  colourFidelity: number;
  /** Mean speed of the prompted objects, pixels/frame (NaN if never seen twice in a row). */
  speed: number;
  reason: string;
}

/**
 * "The prompted colours are present and moving" over the first `seconds` rows: mean colour
 * fidelity at least `minFidelity`, and a mean speed within [minSpeed, maxSpeed] pixels/frame.
 */
export function checkPromptedMotion(
  rows: readonly SecondMetrics[],
  seconds = 2,
  limits: { minFidelity: number; minSpeed: number; maxSpeed: number } = { minFidelity: 0.5, minSpeed: 0.25, maxSpeed: 4 },
): PromptCheck {
  const use = rows.slice(0, seconds).filter((r) => r.frames > 0);
  const frames = use.reduce((a, r) => a + r.frames, 0);
  const colourFidelity = frames > 0 ? use.reduce((a, r) => a + r.colourFidelity * r.frames, 0) / frames : 0;
  const speeds = use.map((r) => r.speed).filter((v) => Number.isFinite(v));
  const speed = speeds.length ? speeds.reduce((a, b) => a + b, 0) / speeds.length : Number.NaN;
  const reasons: string[] = [];
  if (colourFidelity < limits.minFidelity) reasons.push(`colour fidelity ${colourFidelity.toFixed(2)} < ${limits.minFidelity}`);
  if (!(speed >= limits.minSpeed && speed <= limits.maxSpeed)) reasons.push(`speed ${speed.toFixed(2)} px/frame outside [${limits.minSpeed}, ${limits.maxSpeed}]`);
  return { ok: reasons.length === 0, colourFidelity, speed, reason: reasons.join('; ') || 'present and moving' };
}
