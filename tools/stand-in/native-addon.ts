/**
 * A stand-in for the CUDA addon, written as a CommonJS file that the real loader (addon-loader.ts) probes and
 * loads like a built sinkstream_native.node: it names its own GPUs and attention backend, does no model arithmetic
 * (flows are zeros, or with `inputFlows` a fixed function of the forward's inputs; the cache only counts rows) and logs every engine it creates (device, precision) and every CUDA-graph
 * mode and attention precision set on one to a file.
 * For tests that check what the runtime reports and where it places work, never numbers.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ADDON_ENV } from '../../src/engine/native/addon-loader.js';
import { NATIVE_ABI_VERSION } from '../../src/engine/native/addon-types.js';
import { withEnv } from './env.js';

/** What the stand-in's forwardStats counts for every forward (wall ms; the "GPU" 1 ms less). */
export const STAND_IN_FORWARD_MS = 5;
/** What the stand-in's loopBlocks reports for every block: [block, forwards, update] ms. */
export const STAND_IN_LOOP_MS = [12, 10, 1] as const;
/** Device ms a profiled forward adds to each phase (profileRead), in the addon's phase order. */
export const STAND_IN_PHASE_MS = [0.25, 2, 3, 0.5, 1, 0.125] as const;

export interface StandInAddon {
  /** The .cjs file: point SINKSTREAM_NATIVE_ADDON at it. */
  file: string;
  /** One JSON line per engine created: { kind: 'engine' | 'pipeline', devices, precision }. */
  log: string;
}

/** One engine call of the stand-in, timed on the calling thread (performance.now() of this process). */
export interface StandInCall {
  call: string;
  /** When the wrapper called the addon. */
  calledAt: number;
  /** When the call's promise was settled: on a later turn of the event loop, as libuv hands back the real addon's work. */
  settledAt: number;
}

export interface StandInOptions {
  gpus: string[];
  attention: string;
  /** The GPUs run the own Hopper attention kernel (engine.attentionKernel auto picks it on the bf16 path). */
  hopper?: boolean;
  /**
   * Settle the engine calls' promises on a later turn of the event loop (setImmediate) and record each call in the
   * module's `calls` array (standInCalls): the shape of the real addon, whose work finishes on libuv's thread pool.
   */
  timeline?: boolean;
  /**
   * Flows from the forward's inputs instead of zeros: 0.5 latent + t / 10^4 + 10^-3 frame position + 10^-5 cache
   * rows + 10^-3 (sum of the prompt): tests that check which stream's result went where, batched or not.
   */
  inputFlows?: boolean;
}

export function writeStandInAddon(dir: string, options: StandInOptions): StandInAddon {
  const file = path.join(dir, 'stand-in-native-addon.cjs');
  const log = path.join(dir, 'stand-in-engines.jsonl');
  fs.writeFileSync(
    file,
    `'use strict';
const fs = require('node:fs');
const GPUS = ${JSON.stringify(options.gpus)};
const LOG = ${JSON.stringify(log)};
const note = (entry) => fs.appendFileSync(LOG, JSON.stringify(entry) + '\\n');
const TIMELINE = ${options.timeline === true};
const HOPPER = ${options.hopper === true};
const INPUT_FLOWS = ${options.inputFlows === true};
const calls = [];
// the number of forwards in each forwardBatch call, in order
const batches = [];
const flowOf = (h, latent, timesteps, framePositions, flow) => {
  if (!INPUT_FLOWS) return flow.fill(0);
  const perFrame = latent.length / timesteps.length;
  for (let i = 0; i < latent.length; i++) {
    const f = Math.floor(i / (perFrame / h.dims.latentChannels)) % timesteps.length;
    flow[i] = 0.5 * latent[i] + timesteps[f] / 1e4 + 1e-3 * framePositions[f] + 1e-5 * h.rows + 1e-3 * h.prompt;
  }
};
const forwardOne = (h, latent, timesteps, framePositions, keepBlockKv, flow) => {
  flowOf(h, latent, timesteps, framePositions, flow);
  h.forwards++;
  if (keepBlockKv) h.pending = timesteps.length * h.dims.tokensPerFrame;
};
// An engine call: its result now (microtask), or with the timeline on a later turn of the event loop, recorded.
const settle = (call, result) => {
  if (!TIMELINE) return Promise.resolve(result);
  const entry = { call, calledAt: performance.now(), settledAt: NaN };
  calls.push(entry);
  return new Promise((resolve) => setImmediate(() => { entry.settledAt = performance.now(); resolve(result); }));
};
const engine = (dims, devices, precision) => ({ dims, devices, precision, rows: 0, pending: 0, forwards: 0, prompt: 0, profiling: false, profiledForwards: 0 });
// forwardStats: every forward counts as STAND_IN_FORWARD_MS of wall time, 1 ms less on the "GPU"
const STAND_IN_FORWARD_MS = ${STAND_IN_FORWARD_MS};
module.exports = {
  calls,
  batches,
  abiVersion: () => ${NATIVE_ABI_VERSION},
  deviceCount: () => GPUS.length,
  deviceName: (i) => GPUS[i],
  attentionBackend: () => ${JSON.stringify(options.attention)},
  createEngine(dims, device, precision) {
    note({ kind: 'engine', devices: [device], precision });
    return engine(dims, [device], precision);
  },
  createPipeline(dims, precision, devices) {
    note({ kind: 'pipeline', devices: Array.from(devices), precision });
    return engine(dims, Array.from(devices), precision);
  },
  weightsShared: () => true,
  setWeight() {},
  finalize() {},
  destroy() {},
  setPrompt(h, context) {
    h.prompt = context.reduce((a, b) => a + b, 0);
    return settle('setPrompt', 0);
  },
  forward(h, latent, timesteps, framePositions, keepBlockKv, keepQueries, flow) {
    forwardOne(h, latent, timesteps, framePositions, keepBlockKv, flow);
    return settle('forward', -1);
  },
  // the steps' forwards one after another with the generator's sampler between them (src/loop/sampler.ts)
  denoiseSteps(h, x, frames, framePositions, sigmas, noises, samplePrediction, sigmaFloor, flow, x0Out) {
    const n = x.length;
    for (let k = 0; k < sigmas.length; k++) {
      const sigma = sigmas[k];
      forwardOne(h, x, new Float32Array(frames).fill(sigma * 1000), framePositions, false, flow);
      if (samplePrediction) {
        const s = Math.max(sigma, sigmaFloor);
        for (let i = 0; i < n; i++) flow[i] = (x[i] - flow[i]) / s;
      }
      if (k === sigmas.length - 1) for (let i = 0; i < n; i++) x0Out[i] = x[i] - sigma * flow[i];
      else if (noises) {
        const next = sigmas[k + 1], keep = 1 - next, noise = noises.subarray(k * n, (k + 1) * n);
        for (let i = 0; i < n; i++) x[i] = keep * Math.fround(x[i] - sigma * flow[i]) + next * noise[i];
      } else {
        const dt = sigmas[k + 1] - sigma;
        for (let i = 0; i < n; i++) x[i] = x[i] + dt * flow[i];
      }
    }
    return settle('denoiseSteps', undefined);
  },
  forwardBatch(handles, requests, ids) {
    if (handles.length === 0 || handles.length !== requests.length || new Set(handles).size !== handles.length) {
      return Promise.reject(new Error('forwardBatch: distinct handles, one request each'));
    }
    handles.forEach((h, i) => {
      const r = requests[i];
      forwardOne(h, r.latent, r.timesteps, r.framePositions, r.keepBlockKv, r.flow);
      ids[i] = -1;
    });
    batches.push(handles.length);
    return settle('forwardBatch', 0);
  },
  updateCache(h, rows) {
    h.rows = rows;
    h.pending = 0;
    return settle('updateCache', 0);
  },
  scoreCache: () => settle('scoreCache', 0),
  releaseQueries: () => settle('releaseQueries', 0),
  resetCache(h) {
    h.rows = 0;
    h.pending = 0;
    return settle('resetCache', 0);
  },
  cacheInfo: (h) => ({ rows: h.rows, pending: h.pending }),
  readCache: async () => 0,
  profile(h, on) {
    h.profiling = on;
  },
  // a forward run while profiling adds STAND_IN_PHASE_MS (the C loop's: its blocks x (steps + the clean pass))
  profileRead: (h) => Float64Array.from(${JSON.stringify(STAND_IN_PHASE_MS)}, (ms) => ms * h.profiledForwards),
  forwardStats(h, reset) {
    const n = h.forwards;
    if (reset) h.forwards = 0;
    return { forwards: n, wallMs: n * STAND_IN_FORWARD_MS, issueMs: n, gpuMs: n * (STAND_IN_FORWARD_MS - 1), idleMs: 0, graphLaunches: h.cudaGraphs ? n : 0, graphCaptures: 0, graphFallback: 0 };
  },
  setCudaGraphs(h, mode) {
    h.cudaGraphs = mode;
    note({ kind: 'cudaGraphs', devices: h.devices, precision: h.precision, mode });
  },
  setAttentionPrecision(h, mode) {
    if (mode === 1 && h.precision !== 0) throw new Error("FP8 attention needs the native engine's bf16 path (engine.dtype float16 or fp8)");
    h.attentionPrecision = mode;
    note({ kind: 'attentionPrecision', devices: h.devices, precision: h.precision, mode });
  },
  // exact attention's kernel: the own Hopper kernel where the stand-in's GPUs run it (options.hopper) on the bf16 path
  setAttentionKernel(h, mode) {
    if (mode === 2 && !(HOPPER && h.precision === 0)) throw new Error('the Hopper attention kernel needs a Hopper GPU (compute capability 9.0), a build with sm_90a and head_dim 128');
    h.attentionKernel = mode;
    note({ kind: 'attentionKernel', devices: h.devices, precision: h.precision, mode });
  },
  // auto: exact attention on the own kernel, FP8 attention on cuDNN's; hopper: both on the own kernels
  attentionKernel: (h) => ((h.attentionPrecision === 1 ? h.attentionKernel === 2 : h.attentionKernel !== 1) && HOPPER && h.precision === 0 ? 2 : 1),
  setProductPrecision(h, mode) {
    if (mode === 1 && h.precision !== 0) throw new Error("FP8 products need the native engine's bf16 path");
    note({ kind: 'productPrecision', devices: h.devices, precision: h.precision, mode });
  },
  attentionPlans: () => ({ built: 0, ms: 0, reused: 0 }),
  // every C-loop block: STAND_IN_LOOP_MS = [block, forwards, update]
  async loopBlocks(h, noise, frames, sigmas, framePositions, tokensPerFrame, gridWidth, blocks, sinkRows, out) {
    for (let b = 0; b < blocks; b++) out.set(${JSON.stringify(STAND_IN_LOOP_MS)}, 3 * b);
    if (h.profiling) h.profiledForwards += blocks * (sigmas.length + 1);
    h.pending = 0;
    return 0;
  },
};
`,
  );
  return { file, log };
}

interface LogEntry {
  kind: 'engine' | 'pipeline' | 'cudaGraphs' | 'attentionPrecision' | 'attentionKernel' | 'productPrecision';
  devices: number[];
  precision: number;
  mode?: number;
}

function logEntries(addon: StandInAddon): LogEntry[] {
  if (!fs.existsSync(addon.log)) return [];
  return fs
    .readFileSync(addon.log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogEntry);
}

/** Runs `run` with the addon loader pointed at `file` (a stand-in's, or a path to test the loader with), then puts
 * the environment back as it was. Worker threads take the environment as it is when they start. */
export function withAddonFile<T>(file: string, run: () => Promise<T>): Promise<T> {
  return withEnv({ [ADDON_ENV]: file }, run);
}

/** The engines the stand-in created, in order. */
export function standInEngines(addon: StandInAddon): Array<{ kind: 'engine' | 'pipeline'; devices: number[]; precision: number }> {
  return logEntries(addon)
    .filter((e) => e.kind === 'engine' || e.kind === 'pipeline')
    .map(({ kind, devices, precision }) => ({ kind: kind as 'engine' | 'pipeline', devices, precision }));
}

/** The modes the wrapper set on the stand-in's engines, in order: CUDA graphs (0 off, 1 on), attention precision (0
 * exact, 1 fp8), attention kernel (0 auto, 1 cudnn, 2 hopper) or product precision (0 storage type, 1 fp8). */
export function standInModes(
  addon: StandInAddon,
  kind: 'cudaGraphs' | 'attentionPrecision' | 'attentionKernel' | 'productPrecision' = 'cudaGraphs',
): Array<{ devices: number[]; precision: number; mode: number }> {
  return logEntries(addon)
    .filter((e) => e.kind === kind)
    .map(({ devices, precision, mode }) => ({ devices, precision, mode: mode ?? -1 }));
}

/** The size of every forwardBatch call the stand-in ran, in order (the module's own array, not a copy). */
export function standInBatches(addon: StandInAddon): number[] {
  return (createRequire(import.meta.url)(addon.file) as { batches: number[] }).batches;
}

/** The calls the stand-in recorded (options.timeline), loaded in this process: the module's own array, not a copy. */
export function standInCalls(addon: StandInAddon): StandInCall[] {
  return (createRequire(import.meta.url)(addon.file) as { calls: StandInCall[] }).calls;
}
