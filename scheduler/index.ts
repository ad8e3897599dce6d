/**
 * scheduler/: the SLO-aware block scheduler (docs/scheduler.md). Pure logic: no I/O, no timers; time
 * comes from an injected clock, costs from a cost model fitted to measured engine timings.
 *
 * Integration (render / serve):
 *
 *   import { createScheduler, CostModel, monotonicClock } from '../scheduler/index.js';
 *
 *   // 1. Calibrate once per device: time forwards of the real engine on `calibrationGrid(...)`
 *   //    (batch sizes, block sizes, cache lengths) and decodes, then fit. Store `costModel.toJSON()`; rebuild later
 *   //    with `new CostModel(json)`.
 *   const { model: costModel } = CostModel.fit({ forward: samples, decode: decodeSamples });
 *
 *   // 2. One scheduler for the process.
 *   const scheduler = createScheduler({ clock: monotonicClock, costModel, devices: [{ id: 'gpu0', maxBatch: 4 }],
 *                                       config: config.scheduler });
 *
 *   // 3. A stream asks to start: an ordinary value comes back, never an exception for capacity.
 *   const d = scheduler.admit(spec);                  // a StreamSpec: plain data (src/realtime/stream-spec.ts builds it from a config)
 *   if (!d.admitted) reply(503, d.reason);          // d.code: 'capacity' | 'deadline' | 'duplicate' | 'no-device'
 *
 *   // 4. The loop: whenever a device is idle or a stream's next block is due, ask for a plan, run its
 *   //    jobs (job.items: which stream's block at which step, batched; kind 'clean' = the clean pass,
 *   //    followed by the decode of that block), and report what happened.
 *   const plan = scheduler.tick();
 *   for (const job of plan.jobs) runOnEngine(job).then(({ startedAt, finishedAt }) =>
 *     scheduler.update(plan, [{ jobId: job.id, startedAt, finishedAt }]));
 *   // plan.changes: rung changes (steps / block size degraded or restored) with reasons;
 *   // plan.stopped: streams stopped so that the others keep their deadlines (a device slowed down).
 *   // scheduler.nextWakeup(): when the next block is released, if nothing finishes before.
 *
 *   // 5. Metrics for /metrics: TTFF, latency and jitter percentiles, misses, rung, per stream.
 *   scheduler.metrics('viewer-42');
 *   scheduler.remove('viewer-42');                    // the viewer left: others may move up the ladder
 *
 * A single-stream engine (batch 1) fits this as is: give the device maxBatch 1; a job then holds one
 * item, i.e. one `engine.forward` (and, for a clean pass, the cache update and the decode).
 * A runtime that runs whole blocks (src/loop/generator.ts: `next({ steps })`) passes
 * `granularity: 'block'`: a job is then one stream's whole block at the steps its rung gives
 * (src/realtime/ is that bridge for render and serve).
 *
 * This folder owns its types and imports nothing from src/ (test/repo/imports.test.ts checks it):
 * callers pass plain data in.
 * The pipeline across GPUs (pipeline.ts) balances a layer split from measured stage times;
 * placement.ts chooses between that pipeline and one whole-model replica per GPU from calibrated costs.
 */
import { Scheduler, type SchedulerOptions } from './scheduler.js';

export * from './types.js';
export { schedulerConfig, schedulerDefaults, objectiveFps, type SchedulerConfig, type BatchingMode } from './config.js';
export { SchedulerError } from './errors.js';
export { quantile } from './stats.js';
export { CostModel, forwardFeatures } from './cost-model.js';
export type { DeviceCoefficients, FitQuality, ForwardItemShape, ForwardSample, FrameCodecSample, Samples } from './cost-model.js';
export { Scheduler } from './scheduler.js';
export { calibrationGrid, type CalibrationPoint, type CalibrationGridOptions } from './calibration-grid.js';
export { VirtualClock, monotonicClock } from './clock.js';
export { streamsBatching, streamBatchBatching, batchingPolicy, type BatchingPolicy } from './batching.js';
export { edfFeasible, type PeriodicLoad, type FeasibilityResult } from './feasibility.js';
export { rungsFrom, assignRungs } from './ladder.js';
export { Playout } from './playout.js';
export { balance, PipelineBalancer, simulatePipeline, stageWorkFrom, stageTimes, bottleneckMs, imbalance } from './pipeline.js';
export type { StageWork, Split, PipelineRunOptions, PipelineRunResult } from './pipeline.js';
export { choosePlacement, type Placement, type PlacementChoice, type PlacementFigures, type PlacementQuestion } from './placement.js';
export { SimulatedEngine, forwardFlops, type SimulatedDeviceSpec, type TransformerShape } from './simulated-engine.js';
export { runScenarios, runScenario, scenarioNames, type ScenarioResult, type SimulationReport } from './simulate.js';
export { formatScenarioTable } from './report.js';

/** What createScheduler takes: the Scheduler's own options. */
export type CreateSchedulerOptions = SchedulerOptions;

export function createScheduler(options: CreateSchedulerOptions): Scheduler {
  return new Scheduler(options);
}
