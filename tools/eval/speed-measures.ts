// Four ways to measure a generated object's speed, side by side, over the last seconds of each video: the largest
// component's centroid (the evaluation's measure until 2026-12-07), the same only where the colour is drawn once in
// both frames (the evaluation's measure since), a track following the component nearest the last frame's (restarted
// when that is farther than --gate px), and the same track never restarted. A model that draws an object twice moves
// the largest component between the copies; this shows how much of a measured speed that is.
//
//   npx tsx tools/eval/speed-measures.ts [--policy streamingllm-sink] [--prompts 3] [--seeds 0,1,2] [--seconds 60]
//                                        [--late 10] [--gate 6] [--set key=value ...]
//
// Renders the held-out prompts of `sinkstream eval` and prints one JSON line a video (each measure as speed / the
// training mean, with its number of samples), then their means.
import { parseArgs } from 'node:util';
import type { ObjectPart } from '../../src/eval/detector.js';
import { SPEED_STRIDE } from '../../src/eval/metrics.js';
import { defaultSpecDir, loadSceneSpec } from '../../src/scene/scene-spec.js';
import { detectedFrames, heldOutVideos } from './held-out-videos.js';

const { values } = parseArgs({
  options: {
    policy: { type: 'string', default: 'streamingllm-sink' },
    prompts: { type: 'string', default: '3' },
    seeds: { type: 'string', default: '0,1,2' },
    seconds: { type: 'string', default: '60' },
    late: { type: 'string', default: '10' },
    gate: { type: 'string', default: '6' },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const spec = loadSceneSpec(defaultSpecDir);
const gate = Number(values.gate);
const measures = ['largest', 'drawnOnce', 'tracked', 'trackedNoRestart'] as const;
type Measure = (typeof measures)[number];
interface Point { cx: number; cy: number }
interface Seen { largest: Point; copies: number; tracked: Point & { track: number }; followed: Point }

const distance = (a: Point, b: Point): number => Math.hypot(a.cx - b.cx, a.cy - b.cy);
const nearest = (parts: ObjectPart[], to: Point): ObjectPart => parts.reduce((a, b) => (distance(a, to) <= distance(b, to) ? a : b));
const means = Object.fromEntries(measures.map((m) => [m, [] as number[]])) as Record<Measure, number[]>;

const videos = heldOutVideos(spec, {
  policy: values.policy, prompts: Number(values.prompts), seeds: values.seeds.split(',').map(Number), seconds: Number(values.seconds), set: values.set,
});
for (const video of videos) {
  const lateFrom = video.frames - Number(values.late) * video.config.generation.fps;
  const history = new Map<string, (Seen | undefined)[]>(video.colours.map((c) => [c, []]));
  const sums = Object.fromEntries(measures.map((m) => [m, { sum: 0, n: 0 }])) as Record<Measure, { sum: number; n: number }>;
  let tracks = 0;
  let frame = 0;
  for await (const detection of detectedFrames(video, spec)) {
    for (const c of video.colours) {
      const seen = history.get(c)!;
      const o = detection.objects.get(c);
      const last = seen[seen.length - 1];
      let now: Seen | undefined;
      if (o) {
        const near = last && nearest(o.parts, last.tracked);
        const tracked = near && distance(near, last.tracked) <= gate ? { ...near, track: last.tracked.track } : { cx: o.cx, cy: o.cy, track: tracks++ };
        now = { largest: o, copies: o.copies, tracked, followed: last ? nearest(o.parts, last.followed) : o };
      }
      seen.push(now);
      const before = seen.length > SPEED_STRIDE ? seen[seen.length - 1 - SPEED_STRIDE] : undefined;
      if (frame < lateFrom || !now || !before) continue;
      const add = (m: Measure, a: Point, b: Point): void => {
        sums[m].sum += distance(a, b) / SPEED_STRIDE;
        sums[m].n++;
      };
      add('largest', now.largest, before.largest);
      if (now.copies === 1 && before.copies === 1) add('drawnOnce', now.largest, before.largest);
      if (now.tracked.track === before.tracked.track) add('tracked', now.tracked, before.tracked);
      add('trackedNoRestart', now.followed, before.followed);
    }
    frame++;
  }
  const ratios = Object.fromEntries(measures.map((m) => [m, sums[m].n ? sums[m].sum / sums[m].n / spec.speedMean : Number.NaN])) as Record<Measure, number>;
  measures.forEach((m) => Number.isFinite(ratios[m]) && means[m].push(ratios[m]));
  const round = (x: number) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({ prompt: video.prompt, seed: video.seed, ...Object.fromEntries(measures.map((m) => [m, { ratio: round(ratios[m]), samples: sums[m].n }])) }));
}
const mean = (a: number[]) => Math.round((a.reduce((s, x) => s + x, 0) / a.length) * 100) / 100;
console.log(JSON.stringify({ policy: values.policy, seconds: Number(values.seconds), late: Number(values.late), gate, set: values.set, meanOfVideos: Object.fromEntries(measures.map((m) => [m, mean(means[m])])) }));
