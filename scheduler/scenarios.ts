/**
 * The simulated scenarios behind `sinkstream simulate`. Devices are described by assumptions (an
 * H100-class GPU sustaining 400 TFLOP/s on the 1.3B forward, a small per-call overhead, a TAEHV-class
 * decoder), not by measurements: the point is the scheduler's behaviour, which must hold for any
 * such numbers. Streams are 832x480 Wan2.1-1.3B streams at 16 fps: 1560 tokens per latent frame,
 * blocks of 3 latent frames = 12 video frames, a 12-frame cache window (LongLive's).
 */
import type { SimulatedDeviceSpec, TransformerShape } from './simulated-engine.js';
import type { StreamSpec } from './types.js';

export const WAN_1_3B: TransformerShape = { dim: 1536, layers: 30, ffnDim: 8960, textLen: 512 };
export const MODEL_NAME = 'wan2.1-1.3b';

export interface StreamArrival {
  atMs: number;
  spec: StreamSpec;
}

export interface SchedulerScenario {
  kind: 'scheduler';
  name: string;
  description: string;
  durationMs: number;
  devices: SimulatedDeviceSpec[];
  arrivals: StreamArrival[];
}

export interface PipelineScenario {
  kind: 'pipeline';
  name: string;
  description: string;
  durationMs: number;
  devices: number;
  steps: number;
  /** Device index that slows down, when, and by how much. */
  slowdown?: { device: number; atMs: number; factor: number };
  /** Stream batch: blocks in flight per device (1 = one micro-batch per stage). */
  inFlightPerDevice: number;
}

export type Scenario = SchedulerScenario | PipelineScenario;

export function gpu(id: string, slowdowns?: SimulatedDeviceSpec['slowdowns']): SimulatedDeviceSpec {
  return {
    id,
    maxBatch: 4,
    tflops: 400,
    callOverheadMs: 4,
    itemOverheadMs: 1,
    decodeMsPerLatentFrame: 12, // TAEHV-class: ~3 ms per 480p video frame, 4 video frames per latent frame
    noise: 0.03,
    ...(slowdowns ? { slowdowns } : {}),
  };
}

export function wanStream(id: string, options: { seconds?: number; priority?: number; fps?: number; ttffMs?: number; latencyMs?: number } = {}): StreamSpec {
  const fps = options.fps ?? 16;
  return {
    id,
    model: MODEL_NAME,
    tokensPerFrame: 1560,
    windowFrames: 12,
    videoFramesPerLatentFrame: 4,
    objectives: {
      targetFps: fps,
      latencyMs: options.latencyMs ?? 2500,
      ttffMs: options.ttffMs ?? 2000,
      priority: options.priority ?? 0,
    },
    durationFrames: Math.round((options.seconds ?? 30) * fps),
  };
}

function streams(count: number, startMs: number, gapMs: number, prefix: string, options: Parameters<typeof wanStream>[1] = {}): StreamArrival[] {
  return Array.from({ length: count }, (_, i) => ({ atMs: startMs + i * gapMs, spec: wanStream(`${prefix}${i + 1}`, options) }));
}

export const SCENARIOS: readonly Scenario[] = [
  {
    kind: 'scheduler',
    name: 'steady',
    description: '3 streams on 2 GPUs for 40 s: capacity to spare',
    durationMs: 45_000,
    devices: [gpu('gpu0'), gpu('gpu1')],
    arrivals: streams(3, 0, 1000, 's', { seconds: 40 }),
  },
  {
    kind: 'scheduler',
    name: 'burst',
    description: '2 streams, then 6 new ones within 300 ms at t = 10 s, on 4 GPUs',
    durationMs: 40_000,
    devices: [gpu('gpu0'), gpu('gpu1'), gpu('gpu2'), gpu('gpu3')],
    arrivals: [...streams(2, 0, 500, 'early', { seconds: 35 }), ...streams(6, 10_000, 50, 'burst', { seconds: 25 })],
  },
  {
    kind: 'scheduler',
    name: 'slowdown',
    description: '4 streams on 2 GPUs; gpu1 becomes 1.2x slower at t = 15 s; a 5th stream asks at t = 25 s',
    durationMs: 45_000,
    devices: [gpu('gpu0'), gpu('gpu1', [{ atMs: 15_000, factor: 1.2 }])],
    arrivals: [...streams(4, 0, 500, 's', { seconds: 40 }), { atMs: 25_000, spec: wanStream('late', { seconds: 15 }) }],
  },
  {
    kind: 'scheduler',
    name: 'overload',
    description: '8 streams ask, one every 2 s, on 2 GPUs: more than they can serve',
    durationMs: 45_000,
    devices: [gpu('gpu0'), gpu('gpu1')],
    arrivals: streams(8, 0, 2000, 's', { seconds: 30 }),
  },
  {
    kind: 'scheduler',
    name: 'priority',
    description: 'a low-priority stream on 1 GPU, then a high-priority one at t = 5 s: the low one gives way',
    durationMs: 30_000,
    devices: [gpu('gpu0')],
    // 15 fps keeps the arithmetic clear of the 90% line: 4 + 2 steps use 85% of the GPU, 4 + 3 use 94%.
    arrivals: [
      { atMs: 0, spec: wanStream('low', { seconds: 25, priority: 0, fps: 15 }) },
      { atMs: 5000, spec: wanStream('high', { seconds: 20, priority: 10, fps: 15 }) },
    ],
  },
  ...[1, 2, 4].map(
    (devices): PipelineScenario => ({
      kind: 'pipeline',
      name: `pipeline-${devices}`,
      description: `one stream, 4 steps, layers split over ${devices} GPU${devices > 1 ? 's' : ''} with the stream batch`,
      durationMs: 20_000,
      devices,
      steps: 4,
      inFlightPerDevice: 1,
    }),
  ),
  {
    kind: 'pipeline',
    name: 'pipeline-4-drift',
    description: 'as pipeline-4, but GPU 2 becomes 1.2x slower at t = 10 s: the split rebalances',
    durationMs: 20_000,
    devices: 4,
    steps: 4,
    inFlightPerDevice: 1,
    slowdown: { device: 2, atMs: 10_000, factor: 1.5 },
  },
];
