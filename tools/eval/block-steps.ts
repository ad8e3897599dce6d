// Where in a block a generated object moves: each prompted colour drawn once in two consecutive frames gives one
// step (its centroid's displacement, px), counted by the later frame's place in its block (0: the step across the
// boundary from the block before), and the cosine between that step and the one before it (1: straight on, -1:
// back). A model that moves its objects only inside a block shows a short step at place 0; one that turns them at
// the boundary, a low cosine there.
//
//   npx tsx tools/eval/block-steps.ts [--policy streamingllm-sink] [--prompts 12] [--seeds 0] [--seconds 12]
//                                     [--skip 1] [--set key=value ...]
//
// Prints one JSON line: the mean step at each place, its samples, and the mean over every place.
import { parseArgs } from 'node:util';
import { defaultSpecDir, loadSceneSpec } from '../../src/scene/scene-spec.js';
import { detectedFrames, heldOutVideos } from './held-out-videos.js';

const { values } = parseArgs({
  options: {
    policy: { type: 'string', default: 'streamingllm-sink' },
    prompts: { type: 'string', default: '12' },
    seeds: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '12' },
    skip: { type: 'string', default: '1' },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const spec = loadSceneSpec(defaultSpecDir);
const videos = heldOutVideos(spec, {
  policy: values.policy, prompts: Number(values.prompts), seeds: values.seeds.split(',').map(Number), seconds: Number(values.seconds), set: values.set,
});
const blockFrames = videos[0]!.config.generation.blockFrames;
const sums = Array.from({ length: blockFrames }, () => ({ sum: 0, n: 0, cos: 0, turns: 0 }));
for (const video of videos) {
  const skipFrames = Number(values.skip) * video.config.generation.fps;
  const last = new Map<string, { cx: number; cy: number } | undefined>();
  const lastStep = new Map<string, { dx: number; dy: number } | undefined>();
  let frame = 0;
  for await (const detection of detectedFrames(video, spec)) {
    for (const c of video.colours) {
      const o = detection.objects.get(c);
      const now = o && o.copies === 1 ? { cx: o.cx, cy: o.cy } : undefined;
      const before = last.get(c);
      const step = now && before ? { dx: now.cx - before.cx, dy: now.cy - before.cy } : undefined;
      if (step && frame >= skipFrames) {
        const place = sums[frame % blockFrames]!;
        const length = Math.hypot(step.dx, step.dy);
        place.sum += length;
        place.n += 1;
        const previous = lastStep.get(c);
        const previousLength = previous ? Math.hypot(previous.dx, previous.dy) : 0;
        if (previous && length > 0.25 && previousLength > 0.25) {
          place.cos += (step.dx * previous.dx + step.dy * previous.dy) / (length * previousLength);
          place.turns += 1;
        }
      }
      last.set(c, now);
      lastStep.set(c, step);
    }
    frame += 1;
  }
}
const all = sums.reduce((a, b) => ({ sum: a.sum + b.sum, n: a.n + b.n }), { sum: 0, n: 0 });
console.log(JSON.stringify({
  policy: values.policy, set: values.set,
  stepByPlace: sums.map((s) => (s.n ? s.sum / s.n : null)), samples: sums.map((s) => s.n), mean: all.n ? all.sum / all.n : null,
  cosineByPlace: sums.map((s) => (s.turns ? s.cos / s.turns : null)), cosineSamples: sums.map((s) => s.turns),
}));
