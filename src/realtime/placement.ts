/**
 * `engine.placement` on the runtime side: the GPUs a setup spans, a stream's whole-model engine on one of
 * them (replicas), and the question `choosePlacement` (scheduler/placement.ts) answers for `auto`.
 */
import type { Config } from '../config/schema.js';
import { modelDims } from '../model/dims.js';
import { objectiveFps, type PlacementQuestion } from '../../scheduler/index.js';
import { forwardsPerStep } from './stream-spec.js';

/** The GPUs of the native setup, lane order: engine.devices, else engine.stages of them from engine.device. */
export function placementGpus(config: Config): number[] {
  const e = config.engine;
  return e.devices ? [...e.devices] : Array.from({ length: e.stages }, (_, i) => e.device + i);
}

/** The same config with the whole model on one GPU: a replica's engine (one stage, engine.device = gpu). */
export function replicaConfig(config: Config, gpu: number): Config {
  const { stageLayers: _layers, devices: _devices, ...engine } = config.engine;
  return { ...config, engine: { ...engine, stages: 1, device: gpu } };
}

/**
 * Video frames a latent frame gives, from the decoder's kind, before any decoder was opened (the placement is
 * chosen before the first stream): the streaming decoders' 4, space-to-depth's 1; a custom ONNX graph's is
 * unknown until it runs, and 1 is the lenient guess (the per-stream admission uses the real figure).
 */
export function expectedVideoFramesPerLatentFrame(config: Config): number {
  return config.decoder.kind === 'taehv' || config.decoder.kind === 'wan-vae' ? 4 : 1;
}

/** choosePlacement's question for this server: its stream limit on its GPUs, a stream of its config. */
export function placementQuestion(config: Config, costs: Pick<PlacementQuestion, 'costModel' | 'devices'>): PlacementQuestion {
  return {
    ...costs,
    gpus: placementGpus(config).length,
    streams: config.serve.maxStreams,
    stream: {
      tokensPerFrame: modelDims(config).tokensPerFrame,
      windowFrames: config.cache.window,
      videoFramesPerLatentFrame: expectedVideoFramesPerLatentFrame(config),
      steps: config.generation.steps.length,
      blockFrames: config.generation.blockFrames,
      forwardsPerStep: forwardsPerStep(config),
      objectives: { targetFps: objectiveFps(config), latencyMs: config.scheduler.latencyMs, ttffMs: config.scheduler.ttffMs, priority: 0 },
    },
    headroom: config.scheduler.headroom,
  };
}
