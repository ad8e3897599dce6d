/**
 * The server's block scheduler: one `RuntimeScheduler` (src/realtime/) for all its streams, built
 * once the engine is calibrated (measured on the real engine at server start, once per process and
 * engine setup). Creating a stream asks it to admit the stream with the objectives of the
 * `scheduler:` config section; a refusal carries the scheduler's reason (ERR_CAPACITY, HTTP 503).
 *
 * engine.placement: `pipeline` calibrates the configured engine (its stages are the lanes); `replicas`
 * calibrates one whole-model engine on the first GPU and gives each stream the GPU of the lane the
 * scheduler places it on (`place`, before its generator is built); `auto` calibrates both setups and lets
 * `choosePlacement` (scheduler/placement.ts) pick for serve.maxStreams streams on these GPUs.
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { choosePlacement, CostModel, objectiveFps, type Clock, type Placement, type PlacementChoice } from '../../scheduler/index.js';
import { placementGpus, placementQuestion, replicaConfig } from '../realtime/placement.js';
import { batchedStreams, blockLanes, calibrationFor, describeCalibration, type Calibration } from '../realtime/engine-calibration.js';
import { RuntimeScheduler, type ScheduledStream, type SchedulerDecision, type Timers } from '../realtime/runtime-scheduler.js';
import { scheduledStreamSpec, stepLadderFor } from '../realtime/stream-spec.js';
import type { LiveGenerator } from './live-stream.js';
import type { ServerMetrics } from './metrics.js';
import type { SchedulerFigures } from './protocol.js';
import type { Logger } from './logger.js';

/** A cost model and the device it describes: a measured calibration, or one a test injects. */
export type CalibrationLike = Pick<Calibration, 'device' | 'costModel'> & Partial<Calibration>;

export interface SchedulingOptions {
  /** Default: measured on the real engine (`calibrationFor`, cached per process). */
  calibrate?: (config: Config) => Promise<CalibrationLike>;
  clock?: Clock;
  timers?: Timers;
}

/** Decisions pushed to viewers with a stream's figures. */
const DECISIONS_SHOWN = 5;

export class ServeScheduling {
  /**
   * Video frames per latent frame of this server's decoder (clients cannot change the decoder),
   * learnt from the first generator; until then no stream can be checked before its generator exists.
   */
  private videoFramesPerLatentFrame: number | null = null;
  /** The first block's video frames, when the decoder's causal start gives fewer (known once a generator ran). */
  private firstBlockVideoFrames: number | undefined = undefined;
  private runtime: Promise<RuntimeScheduler> | null = null;
  private current: RuntimeScheduler | null = null;
  private closed = false;
  /** Where streams go (engine.placement, or what `auto` chose once calibrated). */
  private chosen: Placement = 'pipeline';
  /** Why `auto` chose it (null otherwise). */
  private choice: PlacementChoice | null = null;
  /** Replicas: the lane each stream's engine was built for, from `place` to its admission. */
  private readonly lanes = new Map<string, string>();

  constructor(
    private readonly config: Config,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly options: SchedulingOptions = {},
  ) {
    metrics.attachScheduler(() => this.deviceFigures());
  }

  /** Calibrates (once) and builds the scheduler. A failed calibration is retried by the next call. */
  prepare(): Promise<RuntimeScheduler> {
    if (this.closed) return Promise.reject(new SinkstreamError('ERR_CLOSED', 'the server is shutting down'));
    this.runtime ??= (async () => {
      const calibration = await this.calibratePlacement();
      const runtime = new RuntimeScheduler({
        costModel: calibration.costModel as CostModel,
        device: calibration.device,
        lanes: blockLanes(this.config),
        // the setup the lanes run: a whole-model engine per GPU under replicas
        maxBatch: batchedStreams(this.chosen === 'replicas' ? replicaConfig(this.config, placementGpus(this.config)[0]) : this.config),
        config: this.config.scheduler,
        clock: this.options.clock,
        timers: this.options.timers,
        onDecision: (d) => this.decided(d),
      });
      if (this.closed) runtime.close();
      this.current = runtime;
      return runtime;
    })();
    this.runtime.catch(() => (this.runtime = null));
    return this.runtime;
  }

  /** Where streams go: engine.placement, or `auto`'s choice once calibrated (`pipeline` before that). */
  get placement(): Placement {
    return this.chosen;
  }

  /** `auto`'s choice with its figures and reason; null for a fixed placement. */
  get placementChoice(): PlacementChoice | null {
    return this.choice;
  }

  /** Calibrates the setup(s) engine.placement needs and settles the placement; the calibration the lanes run on. */
  private async calibratePlacement(): Promise<CalibrationLike> {
    const calibrate = this.options.calibrate ?? ((c: Config) => calibrationFor(c));
    const measure = async (config: Config): Promise<CalibrationLike> => {
      const c = await calibrate(config);
      if (c.quality && c.blocks !== undefined && c.tookMs !== undefined) {
        this.log.info({ event: 'calibrated', device: c.device }, describeCalibration(c as Calibration, config, stepLadderFor(config)));
      }
      return c;
    };
    const { placement } = this.config.engine;
    if (placement === 'pipeline') return measure(this.config);
    const replica = replicaConfig(this.config, placementGpus(this.config)[0]);
    if (placement === 'replicas') {
      this.chosen = 'replicas';
      return measure(replica);
    }
    // auto: both setups, one after the other (each holds its GPUs while it is measured).
    const pipeline = await measure(this.config);
    const whole = await measure(replica).catch((e: unknown) => {
      // e.g. the whole model does not fit one GPU: the pipeline is the only setup
      this.log.warn({ event: 'placement-replica-unavailable' }, `engine.placement auto: a whole-model engine on one GPU failed (${(e as Error).message}); streams use the pipeline`);
      return null;
    });
    const costs = whole ? [['replicas', whole] as const, ['pipeline', pipeline] as const] : [['pipeline', pipeline] as const];
    const costModel = new CostModel(Object.fromEntries(costs.map(([p, c]) => [p, (c.costModel as CostModel).coefficients(c.device)])));
    this.choice = choosePlacement(placementQuestion(this.config, { costModel, devices: Object.fromEntries(costs.map(([p]) => [p, p])) }));
    this.chosen = this.choice.placement;
    this.log.info({ event: 'placement', placement: this.chosen }, `engine.placement auto: ${this.chosen}: ${this.choice.reason}`);
    return this.chosen === 'replicas' ? whole! : pipeline;
  }

  /**
   * Before a stream's generator is built: the admission test (ERR_CAPACITY with the scheduler's reason on a
   * refusal, as `precheck`) and, under replicas, the stream's config with its engine on the GPU of the lane
   * the scheduler places it on (the least loaded that keeps every deadline); the config as given otherwise.
   */
  place(runtime: RuntimeScheduler, id: string, config: Config): Config {
    if (this.chosen !== 'replicas') {
      this.precheck(runtime, id, config);
      return config;
    }
    // Before any generator ran the decoder's frames are not known: 1 a latent frame is the lenient guess
    // (all lanes are empty then); admission itself uses the real figure.
    const r = runtime.place(scheduledStreamSpec(config, id, this.frameCounts()));
    if (!('lane' in r)) throw new SinkstreamError('ERR_CAPACITY', `the scheduler refused the stream: ${r.reason}`);
    const lane = runtime.laneIds.indexOf(r.lane);
    this.lanes.set(id, r.lane);
    return replicaConfig(config, placementGpus(this.config)[lane]);
  }

  /** A stream placed but never admitted (its generator failed to start): forget its lane. */
  unplace(id: string): void {
    this.lanes.delete(id);
  }

  /**
   * The admission hook for one stream (LiveStream's `admit`): builds the stream's spec from its
   * config and the generator, and throws ERR_CAPACITY with the scheduler's reason on a refusal.
   */
  admitter(runtime: RuntimeScheduler, id: string): (generator: LiveGenerator, config: Config) => ScheduledStream {
    return (generator, config) => {
      const framesPerBlock = generator.framesPerBlock ?? config.generation.blockFrames;
      this.videoFramesPerLatentFrame = Math.max(1, Math.round(framesPerBlock / config.generation.blockFrames));
      this.firstBlockVideoFrames = generator.framesOfBlock?.(0);
      const spec = scheduledStreamSpec(config, id, this.frameCounts());
      const lane = this.lanes.get(id);
      this.lanes.delete(id);
      const admission = runtime.admit(spec, lane);
      if (!admission.admitted) throw new SinkstreamError('ERR_CAPACITY', `the scheduler refused the stream: ${admission.decision.reason}`);
      return admission.stream;
    };
  }

  /**
   * The admission test before a stream's generator is started (a thread, the model, its memory):
   * throws ERR_CAPACITY with the scheduler's reason if the stream would be refused now. Passes when
   * the decoder's frame rate is not known yet (no generator has run); `admitter` decides then.
   */
  precheck(runtime: RuntimeScheduler, id: string, config: Config): void {
    if (this.videoFramesPerLatentFrame === null) return;
    const refusal = runtime.check(scheduledStreamSpec(config, id, this.frameCounts()));
    if (refusal) throw new SinkstreamError('ERR_CAPACITY', `the scheduler refused the stream: ${refusal.reason}`);
  }

  private frameCounts(): { videoFramesPerLatentFrame: number; firstBlockVideoFrames?: number } {
    const counts = { videoFramesPerLatentFrame: this.videoFramesPerLatentFrame ?? 1 };
    return this.firstBlockVideoFrames === undefined ? counts : { ...counts, firstBlockVideoFrames: this.firstBlockVideoFrames };
  }

  /** Stops planning (every stream gets no more turns). */
  close(): void {
    this.closed = true;
    this.current?.close();
  }

  private decided(d: SchedulerDecision): void {
    this.metrics.schedulerDecision(d.kind);
    this.log.info({ event: 'scheduler-decision', stream: d.streamId, kind: d.kind, detail: d.message }, `scheduler: stream ${d.streamId} ${d.kind}: ${d.message}`);
  }

  private deviceFigures() {
    const runtime = this.current;
    if (!runtime) return null;
    const state = runtime.deviceState();
    const { jobs, blocks } = runtime.jobCounts;
    return { device: runtime.device, speed: state.speed, utilisation: state.utilisation, streams: state.streams.length, blocksPerJob: jobs > 0 ? blocks / jobs : 1 };
  }
}

/** The scheduler's figures of one stream (rung and decisions), for viewers and /metrics. */
export function schedulerFigures(stream: ScheduledStream, config: Config): SchedulerFigures {
  const m = stream.metrics();
  return {
    device: m.device,
    state: m.state,
    targetFps: objectiveFps(config),
    steps: m.rung.steps,
    fullSteps: config.generation.steps.length,
    plannedDelayMs: m.plannedDelayMs,
    blocksBySteps: m.blocksBySteps,
    decisions: stream.decisions.slice(-DECISIONS_SHOWN).map((d) => ({ kind: d.kind, message: d.message })),
  };
}
