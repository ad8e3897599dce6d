/**
 * The evaluation's prompt sets. `fixed`: the three prompts of the committed demo-model run.
 * `held-out`: captions of the training grammar that training never sees — the training tools skip
 * every caption whose crc32 (of its UTF-8 bytes) is 0 mod 8 — drawn deterministically with 1, 2 and
 * 3 objects in turn.
 */
import { crc32 } from 'node:zlib';
import { SinkstreamError } from '../errors.js';
import type { SceneSpec } from '../scene/scene-spec.js';
import { seededRandom } from '../../scheduler/random.js'; // mulberry32: the same draw on every machine

export const PROMPT_SETS = ['held-out', 'fixed'] as const;
export type PromptSet = (typeof PROMPT_SETS)[number];

/** The fixed evaluation set: one, two and three objects on different backgrounds (trained-on captions). */
export const FIXED_PROMPTS = [
  'a red circle and a blue square bouncing on a dark green background',
  'a yellow triangle bouncing on a dark blue background',
  'a white square, a magenta circle and a cyan triangle bouncing on a black background',
];

/** Seed of the draw: changing it changes the held-out set, so it is part of the set's definition. */
const HELD_OUT_DRAW_SEED = 16;

/** True for a caption the training tools never train on. */
export function isHeldOut(caption: string): boolean {
  return crc32(Buffer.from(caption, 'utf8')) % 8 === 0;
}

/** A caption exactly as the training data writes it: 'a X, a Y and a Z bouncing on a B background'. */
export function caption(objects: readonly { colour: string; shape: string }[], background: string): string {
  const named = objects.map((o) => `a ${o.colour} ${o.shape}`);
  const what = named.length === 1 ? named[0] : `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}`;
  return `${what} bouncing on a ${background} background`;
}

/** Every caption of the grammar with `count` objects (distinct colours, in order), in a fixed order. */
function allCaptions(spec: SceneSpec, count: number): string[] {
  const colours = [...spec.objects.keys()];
  const out: string[] = [];
  const pick = (chosen: { colour: string; shape: string }[]): void => {
    if (chosen.length === count) {
      for (const background of spec.backgrounds.keys()) out.push(caption(chosen, background));
      return;
    }
    for (const colour of colours) {
      if (chosen.some((o) => o.colour === colour)) continue;
      for (const shape of spec.shapes) pick([...chosen, { colour, shape }]);
    }
  };
  pick([]);
  return out;
}

/**
 * `count` distinct held-out captions: the i-th has (i mod 3) + 1 objects, each drawn uniformly from
 * the held-out captions of that size. The same spec and count give the same list, and a longer list
 * starts with the shorter one.
 */
export function heldOutPrompts(spec: SceneSpec, count: number): string[] {
  const pools = [1, 2, 3].map((k) => allCaptions(spec, k).filter(isHeldOut));
  const sizes = pools.map((p) => p.length);
  const draws = [1, 2, 3].map((k) => seededRandom(HELD_OUT_DRAW_SEED + k));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = i % 3;
    const pool = pools[k];
    if (pool.length === 0) throw new SinkstreamError('ERR_ARGUMENT', `--prompt-count ${count}: the grammar has only ${sizes[k]} held-out captions with ${k + 1} object(s)`);
    const at = Math.floor(draws[k]() * pool.length);
    out.push(pool[at]);
    pool.splice(at, 1);
  }
  return out;
}
