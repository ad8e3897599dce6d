/**
 * The long-horizon evaluation: for each cache-policy preset, render a set of prompts (prompt-sets.ts) and seeds
 * through the library API (createGenerator with the real engine and loop) and measure every second
 * of video against the prompt's ground truth.
 */
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { loadConfig, projectRoot } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { isSinkstreamError, SinkstreamError } from '../errors.js';
import { createGenerator } from '../loop/generator.js';
import { modelDims } from '../model/dims.js';
import { VideoMetrics, type OpeningCheck, type SecondMetrics } from './metrics.js';
import { FIXED_PROMPTS, heldOutPrompts, type PromptSet } from './prompt-sets.js';
import { defaultSpecDir, loadSceneSpec, parsePrompt, type SceneSpec } from '../scene/scene-spec.js';

export const presetsDir = path.join(projectRoot, 'configs', 'presets');

export const DEFAULT_PROMPT_SET: PromptSet = 'held-out';
/** Held-out prompts drawn by default: one each of 1, 2 and 3 objects, as many videos as the fixed set. */
export const DEFAULT_PROMPT_COUNT = 3;
export const DEFAULT_SEEDS = [0, 1, 2];

/** The prompts of a named set (`held-out`: the first `count` of the deterministic draw). */
export function promptsOf(set: PromptSet, count = DEFAULT_PROMPT_COUNT, spec: SceneSpec = loadSceneSpec()): string[] {
  return set === 'fixed' ? [...FIXED_PROMPTS] : heldOutPrompts(spec, count);
}

export interface EvalOptions {
  /**
   * Base configuration file (default configs/default.yaml); each preset's `cache:` section replaces its cache, and
   * `set` entries under `cache.` then apply to every preset's (e.g. `cache.sparse.stride=3`: each preset, sparse).
   */
  configFile?: string;
  set?: string[];
  /** Preset names (configs/presets/<name>.yaml); default: all. */
  policies?: string[];
  /** Explicit prompts; without them, the prompts of `promptSet` (default held-out). */
  prompts?: string[];
  promptSet?: PromptSet;
  /** Prompts drawn from the held-out set (default DEFAULT_PROMPT_COUNT). */
  promptCount?: number;
  seeds?: number[];
  seconds: number;
  /**
   * true: the first block is given from the ground truth (`generation.opening: scene`); false: generated from
   * noise. Default: what the configuration's `generation.opening` says (the videos users get).
   */
  prime?: boolean;
  /**
   * Videos rendered at once (default 1), each with its own engine. The results keep the order of a run with one.
   * With more than one, a configuration whose `engine.threads` is 0 (all cores) gives each video
   * `threadsPerJob` intra-op threads instead, so the videos share the cores rather than each asking for all of them.
   */
  jobs?: number;
  onProgress?: (event: { policy: string; prompt: string; seed: number; second: number; seconds: number }) => void;
}

export interface RunResult {
  policy: string;
  prompt: string;
  seed: number;
  /** Frames generated per second of wall time. */
  generationFps: number;
  seconds: SecondMetrics[];
  /** The prompted objects in the first measured second (after the primed frames when primed). */
  opening: OpeningCheck;
  /** The first frame of every second of video (RGB24, frameSize^2 * 3 bytes), for the filmstrip. */
  stills: Uint8Array[];
}

export function listPresets(): string[] {
  if (!existsSync(presetsDir)) return [];
  return readdirSync(presetsDir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** The preset whose cache section is the base configuration's cache (what the targets call the default configuration), if any. */
export function presetOfBaseCache(options: Pick<EvalOptions, 'configFile' | 'set'>): string | undefined {
  const cache = loadConfig({ file: options.configFile, set: options.set }).cache;
  return listPresets().find((name) => isDeepStrictEqual(loadConfig({ file: path.join(presetsDir, `${name}.yaml`) }).cache, cache));
}

/** Whether the evaluation primes its videos: `options.prime`, else the configuration's own opening. */
export function evalPrimes(options: Pick<EvalOptions, 'configFile' | 'set' | 'prime'>): boolean {
  return options.prime ?? loadConfig({ file: options.configFile, set: options.set }).generation.opening === 'scene';
}

export function presetConfig(name: string, options: Pick<EvalOptions, 'configFile' | 'set' | 'prime'>, prompt: string, seed: number): Config {
  const file = path.join(presetsDir, `${name}.yaml`);
  if (!existsSync(file)) {
    throw new SinkstreamError('ERR_ARGUMENT', `--policies: no preset '${name}' (${file}); presets: ${listPresets().join(', ')}`);
  }
  // the user's cache keys on top of the preset's cache (applied before it, they would be replaced with the section)
  const cacheSets = (options.set ?? []).filter((s) => s.trim().startsWith('cache.'));
  let cache: Config['cache'];
  try {
    cache = loadConfig({ file, set: cacheSets }).cache;
  } catch (e) {
    if (!isSinkstreamError(e)) throw e;
    throw new SinkstreamError(e.code, `preset '${name}' (${file}): ${e.message}`, { cause: e });
  }
  const opening = evalPrimes(options) ? 'scene' : 'noise';
  const model = opening === 'scene' ? { scene: defaultSpecDir } : {};
  return loadConfig({ file: options.configFile, set: options.set, overrides: { cache, model, generation: { prompt, seed, opening } } as Record<string, unknown> });
}

/** onFailure: called as soon as the video fails, before its generator closes (closing takes a while). */
async function runOne(config: Config, spec: SceneSpec, policy: string, seconds: number, options: EvalOptions, onFailure: () => void): Promise<RunResult> {
  const { prompt, seed, fps, blockFrames } = config.generation;
  const scene = parsePrompt(prompt, spec);
  if (config.decoder.kind !== 'space-to-depth') {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `decoder.kind '${config.decoder.kind}': the evaluation measures the demo model's space-to-depth frames`);
  }
  const dims = modelDims(config);
  const size = dims.latentWidth * config.decoder.factor;
  if (size !== spec.frameSize || dims.latentHeight !== dims.latentWidth) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `frames of ${size}x${dims.latentHeight * config.decoder.factor}: the demo data spec is ${spec.frameSize}x${spec.frameSize}`);
  }
  const metrics = new VideoMetrics(scene, spec, fps, config.generation.opening === 'scene' ? blockFrames : 0);
  const total = Math.round(seconds * fps);
  let frames = 0;
  const stills: Uint8Array[] = [];
  const generator = await createGenerator(config);
  const started = performance.now();
  try {
    while (frames < total) {
      const block = await generator.next();
      for (const f of block.frames) {
        if (frames < total) metrics.add(f);
        if (frames < total && frames % fps === 0) stills.push(f);
        frames++;
        if (frames % fps === 0) options.onProgress?.({ policy, prompt, seed, second: frames / fps, seconds });
      }
    }
  } catch (e) {
    onFailure();
    throw e;
  } finally {
    await generator.close();
  }
  const wall = (performance.now() - started) / 1000;
  return { policy, prompt, seed, generationFps: Math.min(frames, total) / wall, seconds: metrics.finish(), opening: metrics.opening(), stills };
}

export async function runEval(options: EvalOptions): Promise<RunResult[]> {
  const policies = options.policies ?? listPresets();
  const spec = loadSceneSpec();
  const prompts = options.prompts ?? promptsOf(options.promptSet ?? DEFAULT_PROMPT_SET, options.promptCount, spec);
  const seeds = options.seeds ?? DEFAULT_SEEDS;
  for (const p of prompts) parsePrompt(p, spec); // refuse a bad prompt before rendering anything
  const primed = { ...options, prime: evalPrimes(options) }; // the base configuration read once, not per video
  const configs = policies.flatMap((policy) => prompts.flatMap((prompt) => seeds.map((seed) => ({ policy, config: presetConfig(policy, primed, prompt, seed) }))));
  const jobs = options.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new SinkstreamError('ERR_ARGUMENT', `--jobs ${options.jobs}: expected a positive integer`);
  const threads = threadsPerJob(jobs);
  const results: RunResult[] = new Array(configs.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < configs.length) {
      const i = next++;
      const { policy, config } = configs[i];
      const own = jobs > 1 && config.engine.threads === 0 ? { ...config, engine: { ...config.engine, threads } } : config;
      try {
        results[i] = await runOne(own, spec, policy, options.seconds, options, () => (failed = true));
      } catch (e) {
        failed = true; // the other workers finish their video and take no new one (set earlier by runOne when it can)
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, configs.length) }, worker));
  return results;
}

/** Intra-op threads each of `jobs` videos rendered at once gets when the configuration says all cores. */
export function threadsPerJob(jobs: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / jobs));
}
