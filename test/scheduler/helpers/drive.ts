/**
 * Drives a scheduler on a virtual clock with an engine whose jobs take `predicted * factor(device, t)`; its
 * `coefficients` (a forward of 10 ms, nothing else) and `config` are the virtual devices of the realtime and
 * serve tests too.
 */
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../../scheduler/clock.js';
import { CostModel, type DeviceCoefficients } from '../../../scheduler/cost-model.js';
import { Scheduler } from '../../../scheduler/scheduler.js';
import { schedulerSection, type SchedulerConfig } from '../../../src/config/sections/scheduler.js';
import type { AdmissionDecision, JobResult, Plan, StreamSpec } from '../../../scheduler/types.js';

export function coefficients(partial: Partial<DeviceCoefficients> = {}): DeviceCoefficients {
  return {
    overheadMs: 10,
    perItemMs: 0,
    perTokenMs: 0,
    perTokenKeyMs: 0,
    decodeOverheadMs: 0,
    decodePerLatentFrameMs: 0,
    encodeOverheadMs: 0,
    encodePerLatentFrameMs: 0,
    ...partial,
  };
}

export function config(overrides: Record<string, unknown> = {}): SchedulerConfig {
  return schedulerSection.parse({ marginMs: 20, ...overrides });
}

/** A stream of 1-token latent frames, 1 video frame per latent frame, 30 fps: a 3-frame block every 100 ms. */
export function stream(id: string, o: { priority?: number; frames?: number; ttffMs?: number; latencyMs?: number; fps?: number } = {}): StreamSpec {
  return {
    id,
    model: 'm',
    tokensPerFrame: 1,
    windowFrames: 6,
    videoFramesPerLatentFrame: 1,
    objectives: { targetFps: o.fps ?? 30, latencyMs: o.latencyMs ?? 1000, ttffMs: o.ttffMs ?? 1000, priority: o.priority ?? 0 },
    ...(o.frames !== undefined ? { durationFrames: o.frames } : {}),
  };
}

export interface Driver {
  clock: VirtualClock;
  scheduler: Scheduler;
  plans: Plan[];
  admit(spec: StreamSpec): AdmissionDecision;
  /** Runs until `until` ms. */
  run(until: number): void;
}

export function driver(options: {
  devices?: string[];
  coefficients?: Partial<DeviceCoefficients>;
  config?: SchedulerConfig;
  maxBatch?: number;
  factor?: (device: string, at: number) => number;
}): Driver {
  const devices = options.devices ?? ['gpu0'];
  const clock = new VirtualClock(0);
  const costModel = new CostModel(Object.fromEntries(devices.map((d) => [d, coefficients(options.coefficients)])));
  const scheduler = new Scheduler({
    clock,
    costModel,
    devices: devices.map((id) => ({ id, maxBatch: options.maxBatch ?? 4 })),
    config: options.config ?? config(),
  });
  const factor = options.factor ?? (() => 1);
  const inflight: Array<{ plan: Plan; result: JobResult }> = [];
  const plans: Plan[] = [];
  return {
    clock,
    scheduler,
    plans,
    admit: (spec) => scheduler.admit(spec, clock.now()),
    run(until: number) {
      for (;;) {
        const t = clock.now();
        inflight.sort((a, b) => a.result.finishedAt - b.result.finishedAt || a.result.jobId - b.result.jobId);
        while (inflight.length && inflight[0].result.finishedAt <= t) {
          const done = inflight.shift()!;
          scheduler.update(done.plan, [done.result]);
        }
        const plan = scheduler.tick(t);
        plans.push(plan);
        for (const job of plan.jobs) {
          const ms = (job.predictedMs / (scheduler.deviceState(job.device).speed || 1)) * factor(job.device, t);
          inflight.push({ plan, result: { jobId: job.id, startedAt: t, finishedAt: t + ms } });
        }
        const wake = scheduler.nextWakeup(t);
        const next = Math.min(...inflight.map((f) => f.result.finishedAt), wake !== null && wake > t ? wake : Infinity, until);
        if (next <= t) break;
        clock.set(next);
      }
    },
  };
}

/** The plans' predicted job times, summed (ms). */
export function predictedTotalMs(d: Pick<Driver, 'plans'>): number {
  return d.plans.flatMap((p) => p.jobs).reduce((sum, j) => sum + j.predictedMs, 0);
}

/**
 * One stream on the default device (a forward of 10 ms), admitted (asserted) and run until `until` ms: the driver
 * and the admitted rung's step count.
 */
export function runAdmitted(spec: StreamSpec, until = 3000): { d: Driver; steps: number } {
  const d = driver({});
  const decision = d.admit(spec);
  assert.is(decision.admitted, true, `${spec.id} admitted`);
  if (!decision.admitted) throw new Error('unreachable');
  d.run(until);
  return { d, steps: decision.rung.steps };
}
