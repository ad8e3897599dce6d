// Where the generated objects are: the mean centroid and velocity (over the evaluation's speed stride) of the detected prompted objects, and for
// those that reach the frame's edge, which side (the one nearest their centroid). The training data places and moves
// its objects symmetrically (mean centroid at the frame's centre), so a mean off the centre is the model's.
//
//   npx tsx tools/eval/object-sides.ts [--prompts 12] [--seeds 0] [--seconds 12] [--set key=value ...]
//
// Renders the held-out prompts of `sinkstream eval` under the default cache (streamingllm-sink) and prints one JSON line.
import { parseArgs } from 'node:util';
import { detectFrame } from '../../src/eval/detector.js';
import { SPEED_STRIDE } from '../../src/eval/metrics.js';
import { heldOutPrompts } from '../../src/eval/prompt-sets.js';
import { presetConfig } from '../../src/eval/run-eval.js';
import { createGenerator } from '../../src/loop/generator.js';
import { defaultSpecDir, loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';

const { values } = parseArgs({
  options: {
    prompts: { type: 'string', default: '12' },
    seeds: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '12' },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const spec = loadSceneSpec(defaultSpecDir);
const last = spec.frameSize - 1;
const sides = { left: 0, right: 0, top: 0, bottom: 0 };
const sum = { objects: 0, atEdge: 0, x: 0, y: 0, vx: 0, vy: 0, moves: 0 };
for (const prompt of heldOutPrompts(spec, Number(values.prompts))) {
  for (const seed of values.seeds.split(',').map(Number)) {
    const config = presetConfig('streamingllm-sink', { set: values.set }, prompt, seed);
    const { objects, background } = parsePrompt(prompt, spec);
    const colours = objects.map((o) => o.colour);
    const total = Number(values.seconds) * config.generation.fps;
    const tracks = new Map<string, ({ cx: number; cy: number } | undefined)[]>(colours.map((c) => [c, []]));
    const generator = await createGenerator(config);
    let frames = 0;
    try {
      while (frames < total) {
        for (const rgb of (await generator.next()).frames) {
          if (frames++ >= total) break;
          const detection = detectFrame(rgb, spec.frameSize, spec, background, colours);
          for (const c of colours) {
            const o = detection.objects.get(c);
            tracks.get(c)!.push(o && { cx: o.cx, cy: o.cy });
            if (!o) continue;
            sum.objects++;
            sum.x += o.cx;
            sum.y += o.cy;
            if (!o.atEdge) continue;
            sum.atEdge++;
            const distance = { left: o.cx, right: last - o.cx, top: o.cy, bottom: last - o.cy };
            const side = (Object.keys(distance) as (keyof typeof distance)[]).reduce((a, b) => (distance[a] <= distance[b] ? a : b));
            sides[side]++;
          }
        }
      }
    } finally {
      await generator.close();
    }
    for (const track of tracks.values()) {
      for (let i = SPEED_STRIDE; i < track.length; i++) {
        const [a, b] = [track[i - SPEED_STRIDE], track[i]];
        if (!a || !b) continue;
        sum.vx += (b.cx - a.cx) / SPEED_STRIDE;
        sum.vy += (b.cy - a.cy) / SPEED_STRIDE;
        sum.moves++;
      }
    }
  }
}
const round = (x: number) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  prompts: Number(values.prompts), seeds: values.seeds, seconds: Number(values.seconds), set: values.set,
  frameCentre: last / 2, objects: sum.objects, meanX: round(sum.x / sum.objects), meanY: round(sum.y / sum.objects),
  meanVelocityX: round(sum.vx / sum.moves), meanVelocityY: round(sum.vy / sum.moves), atEdge: round(sum.atEdge / sum.objects), sides,
}));
