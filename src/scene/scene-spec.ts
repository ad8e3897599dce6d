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

/** How the training captions (tools/data/scenes.py `caption`) name one, two and three objects. */
const OBJECT_FORMS = ['a <colour> <shape>', 'a <colour> <shape> and a <colour> <shape>', 'a <colour> <shape>, a <colour> <shape> and a <colour> <shape>'];

/** What the model was trained to draw, for an error message: colours, shapes, backgrounds and the caption forms. */
export function describeTrainedScenes(spec: SceneSpec): string {
  return (
    `the model can draw 1 to 3 objects, each in a different colour (${[...spec.objects.keys()].join(', ')}), ` +
    `each a shape (${spec.shapes.join(', ')}), on a background (${[...spec.backgrounds.keys()].join(', ')}), ` +
    `written as the training captions were: '${OBJECT_FORMS.join("', '")}', then 'bouncing on a <background> background'`
  );
}

/** The prompt's words as the built-in tokenizer splits them (runs of letters, lowercased). */
function promptWords(prompt: string): string[] {
  return prompt.toLowerCase().match(/\p{L}+/gu) ?? [];
}

/**
 * Reads a prompt of the training grammar, strictly: its words (punctuation aside) must be exactly a
 * training caption (tools/data/scenes.py `caption`): one to three objects of different object
 * colours, each a trained shape, joined as training joined them, on a trained background. Anything
 * else is ERR_PROMPT naming the first thing that differs and what the model can draw.
 */
export function parsePrompt(prompt: string, spec: SceneSpec): PromptScene {
  const words = promptWords(prompt);
  function refuse(why: string): never {
    throw new SinkstreamError('ERR_PROMPT', `prompt '${prompt}': ${why}; ${describeTrainedScenes(spec)} (the training grammar)`);
  }
  let at = 0;
  function expect(word: string, where: string): void {
    if (words[at] !== word) refuse(words[at] === undefined ? `ends where '${word}' ${where} was expected` : `'${words[at]}' where '${word}' ${where} was expected`);
    at++;
  }
  const objects: PromptObject[] = [];
  function readObject(): void {
    expect('a', 'before an object');
    const colour = words[at];
    const shape = words[at + 1];
    if (colour === undefined) refuse('ends before an object colour');
    if (!spec.objects.has(colour)) refuse(`'${colour}' is not an object colour the model was trained on`);
    if (shape === undefined) refuse('ends before a shape');
    if (!(spec.shapes as string[]).includes(shape)) refuse(`'${shape}' is not a shape the model was trained on`);
    if (objects.some((o) => o.colour === colour)) refuse(`two objects are ${colour}; training scenes never repeat a colour`);
    objects.push({ colour, shape: shape as ShapeName });
    at += 2;
  }
  readObject();
  while (words[at] === 'a') readObject(); // 'a X, a Y and a Z': the comma is not a word
  let joinedByAnd = 0;
  while (words[at] === 'and') {
    at++;
    readObject();
    joinedByAnd++;
  }
  if (objects.length > 3) refuse(`names ${objects.length} objects; the training scenes have at most 3`);
  if (objects.length > 1 && joinedByAnd !== 1) refuse(`joins its ${objects.length} objects otherwise than training did ('${OBJECT_FORMS[objects.length - 1]}')`);
  expect('bouncing', 'after the objects');
  expect('on', "after 'bouncing'");
  expect('a', "after 'bouncing on'");
  const last = words.lastIndexOf('background');
  if (last < at || last !== words.length - 1) refuse(`does not end in '<background> background'`);
  const background = words.slice(at, last).join(' ');
  if (!spec.backgrounds.has(background)) refuse(`'${background}' is not a background the model was trained on`);
  return { prompt, objects, background };
}
