// The held-out videos of `sinkstream eval` under one cache preset, for the analysis tools beside this file: which
// videos (prompt x seed), and each one's frames rendered through the library API and detected as they come.
import { detectFrame, type FrameDetection } from '../../src/eval/detector.js';
import { heldOutPrompts } from '../../src/eval/prompt-sets.js';
import { presetConfig } from '../../src/eval/run-eval.js';
import { createGenerator } from '../../src/loop/generator.js';
import { parsePrompt, type SceneSpec } from '../../src/scene/scene-spec.js';
import type { Config } from '../../src/config/schema.js';

export interface HeldOutVideo {
  prompt: string;
  seed: number;
  /** The prompted object colours, in the prompt's order. */
  colours: string[];
  background: string;
  config: Config;
  /** Frames to render: the requested seconds at the configuration's frame rate. */
  frames: number;
}

export function heldOutVideos(spec: SceneSpec, options: { policy: string; prompts: number; seeds: number[]; seconds: number; set: string[] }): HeldOutVideo[] {
  return heldOutPrompts(spec, options.prompts).flatMap((prompt) =>
    options.seeds.map((seed) => {
      const config = presetConfig(options.policy, { set: options.set }, prompt, seed);
      const { objects, background } = parsePrompt(prompt, spec);
      return { prompt, seed, colours: objects.map((o) => o.colour), background, config, frames: options.seconds * config.generation.fps };
    }),
  );
}

/** The video's frames, each as the evaluation's detector sees it, in order; the generator is closed however the loop ends. */
export async function* detectedFrames(video: HeldOutVideo, spec: SceneSpec): AsyncGenerator<FrameDetection> {
  const generator = await createGenerator(video.config);
  let frames = 0;
  try {
    while (frames < video.frames) {
      for (const rgb of (await generator.next()).frames) {
        if (frames++ >= video.frames) break;
        yield detectFrame(rgb, spec.frameSize, spec, video.background, video.colours);
      }
    }
  } finally {
    await generator.close();
  }
}
