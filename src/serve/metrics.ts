/**
 * Prometheus metrics of a server (prom-client, one registry per server so several servers can live
 * in one process). Per-frame samples feed summaries as blocks arrive; point-in-time figures (TTFF,
 * fps, occupancy, viewers) are read from the live streams at scrape time.
 */
import { Counter, Gauge, Registry, Summary } from 'prom-client';
import type { StreamFigures } from './protocol.js';
import type { BlockSamples } from './stream-stats.js';

const PERCENTILES = [0.5, 0.95, 0.99];
const label = ['stream'] as const;

/** The scheduler's device, read at scrape time. */
export interface SchedulerDeviceFigures {
  device: string;
  /** Measured / calibrated block time, smoothed (1 = as calibrated). */
  speed: number;
  /** Device share the admitted streams' rungs plan to use. */
  utilisation: number;
  streams: number;
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly latency: Summary<'stream'>;
  private readonly jitter: Summary<'stream'>;
  private readonly block: Summary<'stream'>;
  private readonly frames: Counter<'stream'>;
  private readonly misses: Counter<'stream'>;
  private readonly skipped: Counter<'stream'>;
  private readonly dropped: Counter<'stream'>;
  private readonly restarts: Counter<'stream'>;
  readonly controlErrors: Counter<'code'>;
  readonly refusedUpgrades: Counter<'reason'>;
  private readonly decisions: Counter<'kind'>;
  private schedulerDevice: () => SchedulerDeviceFigures | null = () => null;

  constructor(figures: () => StreamFigures[]) {
    const registers = [this.registry];
    const summary = (name: string, help: string) =>
      new Summary({ name, help, labelNames: label, percentiles: PERCENTILES, maxAgeSeconds: 60, ageBuckets: 6, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: label, registers });
    this.latency = summary('sinkstream_frame_latency_seconds', 'Block start to frame ready, per frame');
    this.jitter = summary('sinkstream_frame_jitter_seconds', '|latency(n) - latency(n-1)|, per frame');
    this.block = summary('sinkstream_block_seconds', 'Generator wall time per block');
    this.frames = counter('sinkstream_frames_total', 'Frames generated');
    this.misses = counter('sinkstream_deadline_misses_total', 'Frames ready after their playout slot at the target fps');
    this.skipped = counter('sinkstream_viewer_skipped_fragments_total', 'Fragments not sent to a viewer that was behind or waiting for a keyframe');
    this.dropped = counter('sinkstream_viewer_dropped_total', 'Viewers disconnected for falling past the hard cap');
    this.restarts = counter('sinkstream_encoder_restarts_total', 'Encoder (ffmpeg) restarts after it died');
    this.controlErrors = new Counter({ name: 'sinkstream_control_errors_total', help: 'Rejected control messages and requests', labelNames: ['code'], registers });
    this.refusedUpgrades = new Counter({ name: 'sinkstream_refused_upgrades_total', help: 'WebSocket upgrades refused before the handshake', labelNames: ['reason'], registers });

    const gauge = (name: string, help: string, pick: (f: StreamFigures) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: label,
        registers,
        collect() {
          this.reset();
          for (const f of figures()) {
            const v = pick(f);
            if (v !== null) this.set({ stream: f.stream }, v);
          }
        },
      });
    gauge('sinkstream_ttff_seconds', 'Stream created to first fragment ready for viewers', (f) => (f.ttffMs === null ? null : f.ttffMs / 1000));
    gauge('sinkstream_target_fps', 'Target frame rate of the stream', (f) => f.targetFps);
    gauge('sinkstream_delivered_fps', 'Frames per second delivered over the last seconds', (f) => f.fps);
    gauge('sinkstream_generation_fps', 'Frames per second of generation time (capacity)', (f) => f.generationFps);
    gauge('sinkstream_deadline_miss_ratio', 'Deadline misses / frames', (f) => f.missRate);
    gauge('sinkstream_cache_occupancy_ratio', 'KV cache frames held / cache capacity', (f) => f.cacheOccupancy);
    gauge('sinkstream_cache_frames', 'KV cache frames held', (f) => f.cache.length);
    gauge('sinkstream_viewers', 'Viewers watching the stream', (f) => f.viewers);
    this.decisions = new Counter({
      name: 'sinkstream_scheduler_decisions_total',
      help: 'Block scheduler decisions: admitted, refused, lowered / raised (quality ladder), stopped, left',
      labelNames: ['kind'],
      registers,
    });
    // The block scheduler's view of each stream (scheduler/playout.ts definitions).
    const scheduled = (name: string, help: string, pick: (s: NonNullable<StreamFigures['scheduler']>) => number | null) =>
      gauge(name, help, (f) => (f.scheduler ? pick(f.scheduler) : null));
    scheduled('sinkstream_scheduler_ttff_seconds', 'Admission to first frame on screen (scheduler playout)', (s) => (s.ttffMs === null ? null : s.ttffMs / 1000));
    scheduled('sinkstream_scheduler_steps', 'Denoising steps the quality ladder gives the stream now', (s) => s.steps);
    scheduled('sinkstream_scheduler_planned_delay_seconds', 'Start-up delay fixed at admission (latency of an on-time frame)', (s) => s.plannedDelayMs / 1000);
    scheduled('sinkstream_scheduler_deadline_misses', 'Frames not ready at their playout slot (scheduler playout)', (s) => s.missedDeadlines);
    scheduled('sinkstream_scheduler_miss_ratio', 'Missed / due frames (scheduler playout)', (s) => s.missRate);
    scheduled('sinkstream_scheduler_frames_delivered', 'Frames shown (scheduler playout)', (s) => s.framesDelivered);
    const quantiles = (name: string, help: string, pick: (s: NonNullable<StreamFigures['scheduler']>) => { p50: number; p95: number; p99: number }) =>
      new Gauge({
        name,
        help,
        labelNames: ['stream', 'quantile'],
        registers,
        collect() {
          this.reset();
          for (const f of figures()) {
            if (!f.scheduler || f.scheduler.framesDelivered === 0) continue;
            const p = pick(f.scheduler);
            this.set({ stream: f.stream, quantile: '0.5' }, p.p50 / 1000);
            this.set({ stream: f.stream, quantile: '0.95' }, p.p95 / 1000);
            this.set({ stream: f.stream, quantile: '0.99' }, p.p99 / 1000);
          }
        },
      });
    quantiles('sinkstream_scheduler_latency_seconds', 'Per-frame latency: shown minus the frame\'s place on the timeline', (s) => s.latencyMs);
    quantiles('sinkstream_scheduler_jitter_seconds', '|latency(n) - latency(n-1)| (scheduler playout)', (s) => s.jitterMs);
    new Gauge({
      name: 'sinkstream_scheduler_blocks',
      help: 'Blocks finished, by denoising steps',
      labelNames: ['stream', 'steps'],
      registers,
      collect() {
        this.reset();
        for (const f of figures()) for (const [steps, n] of Object.entries(f.scheduler?.blocksBySteps ?? {})) this.set({ stream: f.stream, steps }, n);
      },
    });
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
    device('sinkstream_scheduler_device_speed', 'Measured / calibrated block time, smoothed (1 = as calibrated)', (d) => d.speed);
    device('sinkstream_scheduler_device_utilisation', 'Device share planned for the admitted streams at their rungs', (d) => d.utilisation);
    device('sinkstream_scheduler_device_streams', 'Streams admitted on the device', (d) => d.streams);
    new Gauge({
      name: 'sinkstream_streams',
      help: 'Live streams',
      registers,
      collect() {
        this.set(figures().length);
      },
    });
  }

  observeBlock(stream: string, samples: BlockSamples, blockMs: number): void {
    const l = { stream };
    for (const v of samples.latencyMs) this.latency.observe(l, v / 1000);
    for (const v of samples.jitterMs) this.jitter.observe(l, v / 1000);
    this.block.observe(l, blockMs / 1000);
    this.frames.inc(l, samples.latencyMs.length);
    if (samples.misses) this.misses.inc(l, samples.misses);
  }

  /** Where the scheduler's device figures come from (the server's scheduler). */
  attachScheduler(read: () => SchedulerDeviceFigures | null): void {
    this.schedulerDevice = read;
  }

  schedulerDecision(kind: string): void {
    this.decisions.inc({ kind });
  }

  viewerSkipped(stream: string, n = 1): void {
    this.skipped.inc({ stream }, n);
  }

  viewerDropped(stream: string): void {
    this.dropped.inc({ stream });
  }

  encoderRestarted(stream: string): void {
    this.restarts.inc({ stream });
  }

  /** Forgets an ended stream's series. */
  removeStream(stream: string): void {
    for (const m of [this.latency, this.jitter, this.block, this.frames, this.misses, this.skipped, this.dropped, this.restarts]) {
      m.remove({ stream });
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
