/**
 * The demo data's specification, as the scene opening and the evaluation read it: the palette, the
 * caption grammar, the prompt's ground-truth opening layout (models/demo/palette.json) and the training motion statistics
 * (models/demo/dynamics.json). Both files are written by tools/data/write_spec.py from the same
 * module that generated the training clips.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../util/project-root.js';
import { SinkstreamError } from '../errors.js';

export type Rgb = [number, number, number];
export type ShapeName = 'circle' | 'square' | 'triangle';

export interface SceneSpec {
  frameSize: number;
  objects: Map<string, Rgb>;
  backgrounds: Map<string, Rgb>;
  shapes: ShapeName[];
  openingRadius: number;
  /** Objects in the prompt -> [x, y, vx, vy] per object. */
  layouts: Map<number, [number, number, number, number][]>;
  squareHalf: number;
  triangleCircumradius: number;
  /** Training motion: mean per-frame centroid speed (pixels/frame) and its 5-95% range. */
  speedMean: number;
  speedP5: number;
  speedP95: number;
}

export interface PromptObject {
  colour: string;
  shape: ShapeName;
}

export interface PromptScene {
  prompt: string;
  objects: PromptObject[];
  background: string;
}

export const defaultSpecDir = path.join(projectRoot, 'models', 'demo');

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new SinkstreamError('ERR_MODEL_FILE', `${file}: cannot read the demo data spec (${(e as Error).message}); regenerate it with python3 tools/data/write_spec.py models/demo`, { cause: e });
  }
}

export function loadSceneSpec(dir = defaultSpecDir): SceneSpec {
  const palette = readJson(path.join(dir, 'palette.json')) as {
    frameSize: number;
    objects: Record<string, Rgb>;
    backgrounds: Record<string, Rgb>;
    shapes: ShapeName[];
    opening: { radius: number; layouts: Record<string, [number, number, number, number][]> };
    geometry: { squareHalf: number; triangleCircumradius: number };
  };
  const dynamics = readJson(path.join(dir, 'dynamics.json')) as {
    speedMean: number;
    speedPercentiles: { p5: number; p95: number };
  };
  return {
    frameSize: palette.frameSize,
    objects: new Map(Object.entries(palette.objects)),
    backgrounds: new Map(Object.entries(palette.backgrounds)),
    shapes: palette.shapes,
    openingRadius: palette.opening.radius,
    layouts: new Map(Object.entries(palette.opening.layouts).map(([k, v]) => [Number(k), v])),
    squareHalf: palette.geometry.squareHalf,
    triangleCircumradius: palette.geometry.triangleCircumradius,
    speedMean: dynamics.speedMean,
    speedP5: dynamics.speedPercentiles.p5,
    speedP95: dynamics.speedPercentiles.p95,
  };
}

/** The colour/shape pairs a prompt names, and the background named as `<phrase(background)>`. */
function readScene(prompt: string, spec: SceneSpec, phrase: (background: string) => string): { objects: PromptObject[]; background: string | undefined } {
  const words = prompt.toLowerCase().split(/[^a-z]+/).filter((w) => w.length > 0);
  const objects: PromptObject[] = [];
  for (let i = 1; i < words.length; i++) {
    if ((spec.shapes as string[]).includes(words[i]) && spec.objects.has(words[i - 1])) {
      objects.push({ colour: words[i - 1], shape: words[i] as ShapeName });
    }
  }
  const joined = words.join(' ');
  const background = [...spec.backgrounds.keys()].find((b) => joined.includes(phrase(b)));
  return { objects, background };
}

/**
 * Reads a prompt for a drawn opening, leniently: the `<colour> <shape>` pairs it names (at most 3,
 * as in training; none draws the background alone) on the `<background> background` it names, or
 * on the spec's first background when it names none.
 */
export function parseOpeningPrompt(prompt: string, spec: SceneSpec): PromptScene {
  const { objects, background } = readScene(prompt, spec, (b) => `${b} background`);
  if (objects.length > 3) {
    throw new SinkstreamError('ERR_PROMPT', `prompt '${prompt}': names ${objects.length} objects; the scene opening draws at most 3 (the training scenes' limit)`);
  }
  return { prompt, objects, background: background ?? [...spec.backgrounds.keys()][0] };
}

/** Reads a prompt of the training grammar: `a <colour> <shape>, ... bouncing on a <background> background`. */
export function parsePrompt(prompt: string, spec: SceneSpec): PromptScene {
  const { objects, background } = readScene(prompt, spec, (b) => `on a ${b} background`);
  if (objects.length === 0 || objects.length > 3 || background === undefined) {
    throw new SinkstreamError(
      'ERR_PROMPT',
      `prompt '${prompt}': the evaluation needs the training grammar 'a <colour> <shape>[, a <colour> <shape>] [and a <colour> <shape>] bouncing on a <background> background' ` +
        `with colours ${[...spec.objects.keys()].join('/')}, shapes ${spec.shapes.join('/')}, backgrounds ${[...spec.backgrounds.keys()].join('/')}`,
    );
  }
  return { prompt, objects, background };
}
