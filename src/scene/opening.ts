/**
 * The scene opening (`generation.opening: scene`): the first block is drawn from the prompt with the
 * scene spec the model was trained on, encoded to latents, and handed to the loop as that block's
 * result; the model generates every block after it, attending to it through the cache. This is an
 * image-to-video start, for models that cannot open a video from noise (the first demo model could not:
 * docs/demo-model.md) or to start from a known layout.
 */
import type { Config } from '../config/schema.js';
import { encodeSpaceToDepth } from '../decode/space-to-depth.js';
import { SinkstreamError } from '../errors.js';
import { modelDims } from '../model/dims.js';
import { renderGroundTruth } from './ground-truth.js';
import { loadSceneSpec, parsePrompt, type SceneSpec } from './scene-spec.js';

/** The same configuration with every block generated: what timing measurements need (a drawn block times nothing). */
export function withGeneratedOpening(config: Config): Config {
  return { ...config, generation: { ...config.generation, opening: 'noise' } };
}

export interface SceneOpening {
  /** The first block's latent [channels, blockFrames, H, W] for a prompt (parsePrompt reads it: the training grammar). */
  latentFor(prompt: string): Float32Array;
}

/** Reads the scene spec (ERR_MODEL_FILE if missing) and checks it matches the model's frames. */
export function createSceneOpening(config: Config): SceneOpening {
  const spec: SceneSpec = loadSceneSpec(config.model.scene!);
  const dims = modelDims(config);
  const factor = config.decoder.factor;
  const width = dims.latentWidth * factor;
  const height = dims.latentHeight * factor;
  if (width !== spec.frameSize || height !== spec.frameSize) {
    throw new SinkstreamError(
      'ERR_CONFIG_INVALID',
      `generation.opening 'scene': the scene spec in ${config.model.scene} draws ${spec.frameSize}x${spec.frameSize} frames, the model makes ${width}x${height}`,
    );
  }
  const frames = config.generation.blockFrames;
  return {
    latentFor: (prompt) => encodeSpaceToDepth(renderGroundTruth(parsePrompt(prompt, spec), spec, 0, frames), width, height, factor),
  };
}
