/**
 * A real-time render: one stream held to the live objective (scheduler.targetFps, TTFF and latency
 * objectives) by the same runtime scheduler serve uses. The engine is calibrated first (measured,
 * cached per process); the stream is admitted or the render is refused with the scheduler's reason.
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import type { BlockGenerator } from '../loop/generator.js';
import { blockLanes, calibrationFor, type Calibration } from './engine-calibration.js';
import { scheduledBlocks, type BlockSource } from './block-source.js';
import { RuntimeScheduler, type ScheduledStream, type SchedulerDecision, type Timers } from './runtime-scheduler.js';
import { scheduledStreamSpec } from './stream-spec.js';
import type { Clock } from '../../scheduler/index.js';

export interface RealtimeOptions {
  calibration: Pick<Calibration, 'device' | 'costModel'>;
  clock?: Clock;
  timers?: Timers;
  onDecision?: (d: SchedulerDecision) => void;
}

export interface RealtimeRun {
  runtime: RuntimeScheduler;
  stream: ScheduledStream;
  source: BlockSource;
}

/** Measures the engine (once per process) before the render's own generator exists, so they do not compete. */
export function calibrateForRealtime(config: Config): Promise<Calibration> {
  return calibrationFor(config);
}

/** Admits one stream of `totalFrames` video frames; throws ERR_CAPACITY with the scheduler's reason. */
export function admitRealtime(
  config: Config,
  generator: Pick<BlockGenerator, 'framesPerBlock' | 'next'> & Partial<Pick<BlockGenerator, 'framesOfBlock'>>,
  totalFrames: number,
  options: RealtimeOptions,
): RealtimeRun {
  const runtime = new RuntimeScheduler({
    costModel: options.calibration.costModel,
    device: options.calibration.device,
    lanes: blockLanes(config),
    config: config.scheduler,
    clock: options.clock,
    timers: options.timers,
    onDecision: options.onDecision,
  });
  const spec = scheduledStreamSpec(config, 'render', {
    videoFramesPerLatentFrame: Math.max(1, Math.round(generator.framesPerBlock / config.generation.blockFrames)),
    // A streaming decoder's first block gives fewer frames (TAEHV, Wan VAE: 3 fewer): the timeline knows.
    ...(generator.framesOfBlock ? { firstBlockVideoFrames: generator.framesOfBlock(0) } : {}),
    durationFrames: totalFrames,
  });
  const admission = runtime.admit(spec);
  if (!admission.admitted) {
    runtime.close();
    throw new SinkstreamError('ERR_CAPACITY', `--realtime: the scheduler refused the render: ${admission.decision.reason}`);
  }
  return { runtime, stream: admission.stream, source: scheduledBlocks(admission.stream, generator) };
}
