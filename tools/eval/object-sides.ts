// Where the generated objects are: the mean centroid and velocity (over the evaluation's speed stride) of the detected prompted objects, and for
// those that reach the frame's edge, which side (the one nearest their centroid). The training data places and moves
// its objects symmetrically (mean centroid at the frame's centre), so a mean off the centre is the model's.
//
//   npx tsx tools/eval/object-sides.ts [--prompts 12] [--seeds 0] [--seconds 12] [--set key=value ...]
//
// Renders the held-out prompts of `sinkstream eval` under the default cache (streamingllm-sink) and prints one JSON line.
import { parseArgs } from 'node:util';
import { SPEED_STRIDE } from '../../src/eval/metrics.js';
import { defaultSpecDir, loadSceneSpec } from '../../src/scene/scene-spec.js';
import { detectedFrames, heldOutVideos } from './held-out-videos.js';

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
const videos = heldOutVideos(spec, {
  policy: 'streamingllm-sink', prompts: Number(values.prompts), seeds: values.seeds.split(',').map(Number), seconds: Number(values.seconds), set: values.set,
});
for (const video of videos) {
  const tracks = new Map<string, ({ cx: number; cy: number } | undefined)[]>(video.colours.map((c) => [c, []]));
  for await (const detection of detectedFrames(video, spec)) {
    for (const c of video.colours) {
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
const round = (x: number) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  prompts: Number(values.prompts), seeds: values.seeds, seconds: Number(values.seconds), set: values.set,
  frameCentre: last / 2, objects: sum.objects, meanX: round(sum.x / sum.objects), meanY: round(sum.y / sum.objects),
  meanVelocityX: round(sum.vx / sum.moves), meanVelocityY: round(sum.vy / sum.moves), atEdge: round(sum.atEdge / sum.objects), sides,
}));
