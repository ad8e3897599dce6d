/**
 * Prometheus metrics of a server (prom-client, one registry per server so several servers can live
 * in one process), named by Prometheus' conventions: base units in the name (`_seconds`, `_ratio`),
 * counters end in `_total`, distributions are histograms (aggregatable across instances, unlike
 * summaries), Node's and the process' own metrics (`process_*`, `nodejs_*`) alongside, and
 * `sinkstream_build_info` (always 1) naming the version, Node and engine.
 *
 * What viewers were given (time to first frame, frame lateness and latency, frames delivered, missed
 * playout slots) comes from each stream's playout ledger (playout-ledger.ts) as it records a
 * delivery: one definition per figure, the same viewers and the benchmarks read. Counters and
 * histograms carry no stream label (stream ids are unbounded over a server's life); the per-stream
 * gauges list the live streams only, read at scrape time, so an ended stream's series disappear.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StreamFigures } from './protocol.js';
import type { PlayoutObserver } from './playout-ledger.js';

/** The scheduler's device, read at scrape time. */
export interface SchedulerDeviceFigures {
  device: string;
  /** Measured / calibrated block time, smoothed (1 = as calibrated). */
  speed: number;
  /** Device share the admitted streams' rungs plan to use. */
  utilisation: number;
  streams: number;
  /** Blocks per job the scheduler handed out, on average (above 1: streams' blocks batched, engine.maxBatch). */
  blocksPerJob: number;
}

/** The labels of `sinkstream_build_info`. */
export interface BuildInfo {
  version: string;
  node: string;
  /** The transformer's engine: `ort-cpu`, `ort-webgpu`, `native`. */
  engine: string;
}

/** Seconds. Time to first frame includes building a generator when no spare is ready. */
const TTFF_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60];
const BLOCK_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16];
/** A frame in time has lateness 0 (the first bucket); past one frame period it costs a missed slot. */
const LATENESS_BUCKETS = [0.001, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly blockSeconds: Histogram<'steps'>;
  private readonly blocks: Counter<'steps'>;
  private readonly framesGenerated: Counter;
  private readonly ttff: Histogram;
  private readonly lateness: Histogram;
  private readonly latency: Histogram;
  private readonly delivered: Counter;
  private readonly misses: Counter;
  private readonly skipped: Counter;
  private readonly dropped: Counter;
  private readonly restarts: Counter;
  private readonly admitted: Counter;
  /** Streams not admitted, by the error code the client got (stream-limit, over-capacity, draining, invalid-config, ...). */
  readonly refusedStreams: Counter<'reason'>;
  readonly controlErrors: Counter<'code'>;
  /** Connections refused: before the WebSocket handshake (path, host, origin, token, closing) or right after it (protocol-version, server-full). */
  readonly refusedConnections: Counter<'reason'>;
  private readonly decisions: Counter<'kind'>;
  private schedulerDevice: () => SchedulerDeviceFigures | null = () => null;

  constructor(figures: () => StreamFigures[], build: BuildInfo = { version: 'unknown', node: process.version, engine: 'unknown' }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'sinkstream_build_info', help: 'Always 1; the labels name the version, Node and engine', labelNames: ['version', 'node', 'engine'], registers }).set({ ...build }, 1);

    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    // Generation
    this.blockSeconds = new Histogram({ name: 'sinkstream_block_duration_seconds', help: "Generator wall time per block (the generator's own measure), by denoising steps", labelNames: ['steps'], buckets: BLOCK_BUCKETS, registers });
    this.blocks = new Counter({ name: 'sinkstream_blocks_total', help: 'Blocks generated, by denoising steps', labelNames: ['steps'], registers });
    this.framesGenerated = counter('sinkstream_frames_generated_total', 'Video frames out of the generators');
    // Playout (the streams' ledgers)
    this.ttff = new Histogram({ name: 'sinkstream_time_to_first_frame_seconds', help: 'Stream created to its first frame delivered to viewers (playout ledger)', buckets: TTFF_BUCKETS, registers });
    this.lateness = new Histogram({ name: 'sinkstream_frame_lateness_seconds', help: 'Per frame delivered: how long after its playout slot it came, 0 when in time (playout ledger)', buckets: LATENESS_BUCKETS, registers });
    this.latency = new Histogram({ name: 'sinkstream_frame_latency_seconds', help: "Per frame delivered: shown minus its place on the stream's timeline (playout ledger)", buckets: LATENCY_BUCKETS, registers });
    this.delivered = counter('sinkstream_frames_delivered_total', 'Frames delivered to viewers (playout ledger)');
    this.misses = counter('sinkstream_deadline_misses_total', 'Playout slots in which a viewer had no new frame, stalls and encoder restart gaps included (playout ledger)');
    // Viewers, encoders, admission
    this.skipped = counter('sinkstream_viewer_skipped_fragments_total', 'Fragments not sent to a viewer that was behind or waiting for a keyframe');
    this.dropped = counter('sinkstream_viewers_dropped_total', 'Viewers disconnected for falling past the hard cap or stalling');
    this.restarts = counter('sinkstream_encoder_restarts_total', 'Encoder (ffmpeg) restarts after it died or froze');
    this.admitted = counter('sinkstream_streams_admitted_total', 'Streams created and running');
    this.refusedStreams = new Counter({ name: 'sinkstream_streams_refused_total', help: 'Stream creations refused, by the error code the client got', labelNames: ['reason'], registers });
    this.controlErrors = new Counter({ name: 'sinkstream_control_errors_total', help: 'Rejected control messages and requests', labelNames: ['code'], registers });
    this.refusedConnections = new Counter({
      name: 'sinkstream_refused_connections_total',
      help: 'WebSocket connections refused: before the handshake (path, host, origin, token, closing) or after it (protocol-version, server-full)',
      labelNames: ['reason'],
      registers,
    });
    this.decisions = new Counter({
      name: 'sinkstream_scheduler_decisions_total',
      help: 'Block scheduler decisions: admitted, refused, lowered / raised (quality ladder), stopped, left',
      labelNames: ['kind'],
      registers,
    });

    new Gauge({
      name: 'sinkstream_streams',
      help: 'Live streams',
      registers,
      collect() {
        this.set(figures().length);
      },
    });
    // Per live stream (bounded by serve.maxStreams), read at scrape time.
    const perStream = (name: string, help: string, pick: (f: StreamFigures) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['stream'],
        registers,
        collect() {
          this.reset();
          for (const f of figures()) {
            const v = pick(f);
            if (v !== null) this.set({ stream: f.stream }, v);
          }
        },
      });
    perStream('sinkstream_deadline_miss_ratio', 'Missed slots / (frames shown + missed slots) since the stream started (playout ledger)', (f) => f.missRate);
    perStream('sinkstream_target_fps', 'Target frame rate of the stream', (f) => f.targetFps);
    perStream('sinkstream_delivered_fps', 'Frames per second delivered over the last seconds (playout ledger)', (f) => f.fps);
    perStream('sinkstream_generation_fps', 'Frames per second of generation time (capacity)', (f) => f.generationFps);
    perStream('sinkstream_cache_occupancy_ratio', 'KV cache frames held / cache capacity', (f) => f.cacheOccupancy);
    perStream('sinkstream_cache_frames', 'KV cache frames held', (f) => f.cache.length);
    perStream('sinkstream_viewers', 'Viewers watching the stream', (f) => f.viewers);
    // The block scheduler's view of each stream: its rung (what viewers got is above).
    perStream('sinkstream_scheduler_steps', 'Denoising steps the quality ladder gives the stream now', (f) => f.scheduler?.steps ?? null);
    perStream('sinkstream_scheduler_planned_delay_seconds', 'Start-up delay fixed at admission (the latency the scheduler plans each block for)', (f) =>
      f.scheduler ? f.scheduler.plannedDelayMs / 1000 : null,
    );
    const device = (name: string, help: string, pick: (d: SchedulerDeviceFigures) => number) => {
      const read = () => this.schedulerDevice();
      return new Gauge({
        name,
        help,
        labelNames: ['device'],
        registers,
        collect() {
          this.reset();
          const d = read();
          if (d) this.set({ device: d.device }, pick(d));
        },
      });
    };
    device('sinkstream_scheduler_device_speed_ratio', 'Measured / calibrated block time, smoothed (1 = as calibrated)', (d) => d.speed);
    device('sinkstream_scheduler_device_utilisation_ratio', 'Device share planned for the admitted streams at their rungs', (d) => d.utilisation);
    device('sinkstream_scheduler_device_streams', 'Streams admitted on the device', (d) => d.streams);
    device('sinkstream_scheduler_device_blocks_per_job', "Streams' blocks per job the scheduler handed out, on average (above 1: batched, engine.maxBatch)", (d) => d.blocksPerJob);
  }

  /** A block came out of a generator. */
  observeBlock(block: { frames: number; totalMs: number; steps: number }): void {
    const steps = String(block.steps);
    this.blockSeconds.observe({ steps }, block.totalMs / 1000);
    this.blocks.inc({ steps });
    this.framesGenerated.inc(block.frames);
  }

  /** What a stream's playout ledger reports as it records deliveries (one per stream). */
  playoutObserver(): PlayoutObserver {
    return {
      firstFrame: (ttffMs) => this.ttff.observe(ttffMs / 1000),
      frame: (latenessMs, latencyMs) => {
        this.delivered.inc();
        this.lateness.observe(latenessMs / 1000);
        this.latency.observe(latencyMs / 1000);
      },
      missed: (slots) => this.misses.inc(slots),
    };
  }

  /** Where the scheduler's device figures come from (the server's scheduler). */
  attachScheduler(read: () => SchedulerDeviceFigures | null): void {
    this.schedulerDevice = read;
  }

  schedulerDecision(kind: string): void {
    this.decisions.inc({ kind });
  }

  streamAdmitted(): void {
    this.admitted.inc();
  }

  viewerSkipped(n = 1): void {
    this.skipped.inc(n);
  }

  viewerDropped(): void {
    this.dropped.inc();
  }

  encoderRestarted(): void {
    this.restarts.inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
