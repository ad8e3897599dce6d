/**
 * A simulated engine for scenarios and tests: it "runs" a plan's jobs by computing how long they
 * would take on a device described by assumptions (sustained TFLOP/s, per-call and per-item
 * overheads, decode time per latent frame), with seeded noise and scheduled slow-downs. The forward's
 * time follows the FLOP count of one forward (docs/model.md), so the scheduler's cost model has to learn it from samples
 * (`calibrate`) like it learns a real engine.
 */
import { calibrationGrid, type CalibrationGridOptions } from './calibration-grid.js';
import type { ForwardItemShape, ForwardSample, FrameCodecSample } from './cost-model.js';
import { hashString, seededRandom } from './random.js';
import type { JobResult, PlanJob } from './types.js';

/** What the FLOP count needs of the transformer (docs/model.md names). */
export interface TransformerShape {
  dim: number;
  layers: number;
  ffnDim: number;
  textLen: number;
}

export interface SimulatedDeviceSpec {
  id: string;
  maxBatch: number;
  /** Sustained TFLOP/s on the forward (an assumption of the scenario, not a measurement). */
  tflops: number;
  callOverheadMs: number;
  itemOverheadMs: number;
  decodeMsPerLatentFrame: number;
  /** Relative noise, uniform in [-noise, +noise]. */
  noise: number;
  /** From `atMs` on, every job takes `factor` times as long (a throttled or shared GPU). */
  slowdowns?: ReadonlyArray<{ atMs: number; factor: number }>;
}

/**
 * FLOPs of one forward of one item, per block of docs/model.md: per layer
 * 8 q d^2 (self-attention q, k, v, o) + 4 q k d (QK^T, AV) + 4 q d^2 (cross-attention q, o)
 * + 4 q textLen d (cross-attention scores and values) + 4 q d ffn (FFN); k = cached + q keys.
 */
export function forwardFlops(shape: TransformerShape, item: ForwardItemShape): number {
  const q = item.queryTokens;
  const k = item.cachedTokens + q;
  const d = shape.dim;
  const perLayer = 12 * q * d * d + 4 * q * k * d + 4 * q * shape.textLen * d + 4 * q * d * shape.ffnDim;
  return shape.layers * perLayer;
}

export class SimulatedEngine {
  private readonly devices = new Map<string, SimulatedDeviceSpec>();
  private readonly random = new Map<string, () => number>();

  constructor(
    devices: readonly SimulatedDeviceSpec[],
    private readonly models: Readonly<Record<string, TransformerShape>>,
    seed = 1,
  ) {
    for (const d of devices) {
      this.devices.set(d.id, d);
      this.random.set(d.id, seededRandom(hashString(d.id) ^ seed));
    }
  }

  private device(id: string): SimulatedDeviceSpec {
    const d = this.devices.get(id);
    if (!d) throw new RangeError(`simulated engine: no device '${id}'`);
    return d;
  }

  slowdownAt(deviceId: string, at: number): number {
    let factor = 1;
    for (const s of this.device(deviceId).slowdowns ?? []) if (at >= s.atMs) factor = s.factor;
    return factor;
  }

  private jitter(deviceId: string): number {
    const d = this.device(deviceId);
    return 1 + d.noise * (2 * this.random.get(deviceId)!() - 1);
  }

  /** True time of a batched forward without noise or slow-down. */
  forwardMs(deviceId: string, model: string, items: readonly ForwardItemShape[]): number {
    const d = this.device(deviceId);
    const shape = this.models[model];
    if (!shape) throw new RangeError(`simulated engine: no model '${model}'`);
    const flops = items.reduce((sum, item) => sum + forwardFlops(shape, item), 0);
    return d.callOverheadMs + d.itemOverheadMs * items.length + flops / (d.tflops * 1e9);
  }

  decodeMs(deviceId: string, latentFrames: number): number {
    return this.device(deviceId).decodeMsPerLatentFrame * latentFrames;
  }

  /** Runs a job that starts at `startedAt`. */
  run(job: PlanJob, startedAt: number): JobResult {
    const model = job.items[0].model;
    const ideal = this.forwardMs(job.device, model, job.items) + this.decodeMs(job.device, job.decodeLatentFrames);
    const ms = ideal * this.slowdownAt(job.device, startedAt) * this.jitter(job.device);
    return { jobId: job.id, startedAt, finishedAt: startedAt + ms };
  }

  /** A benchmark sweep on one device (before any slow-down): the samples a cost model is fitted from. */
  calibrate(deviceId: string, model: string, grid: Omit<CalibrationGridOptions, 'maxBatch'>): { forward: ForwardSample[]; decode: FrameCodecSample[] } {
    const forward: ForwardSample[] = [];
    const decode: FrameCodecSample[] = [];
    for (const p of calibrationGrid({ ...grid, maxBatch: this.device(deviceId).maxBatch })) {
      const items = Array.from({ length: p.batch }, () => p);
      forward.push({ device: deviceId, ...p, ms: this.forwardMs(deviceId, model, items) * this.jitter(deviceId) });
    }
    for (const latentFrames of [1, 2, 3, 4]) {
      decode.push({ device: deviceId, latentFrames, ms: this.decodeMs(deviceId, latentFrames) * this.jitter(deviceId) });
    }
    return { forward, decode };
  }
}
