/**
 * Prometheus metrics of a server (prom-client, one registry per server so several servers can live
 * in one process). A stream's playout figures (TTFF, latency and jitter percentiles, misses) are
 * read from its playout ledger at scrape time, the same figures viewers are sent; block times feed
 * a summary as blocks arrive. Every refusal is counted: connections (`sinkstream_refused_connections_total`)
 * and requests (`sinkstream_control_errors_total`).
 */
import { Counter, Gauge, Registry, Summary } from 'prom-client';
import type { Percentiles, StreamFigures } from './protocol.js';

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
  private readonly block: Summary<'stream'>;
  private readonly frames: Counter<'stream'>;
  private readonly skipped: Counter<'stream'>;
  private readonly dropped: Counter<'stream'>;
  private readonly restarts: Counter<'stream'>;
  readonly controlErrors: Counter<'code'>;
  /** Connections refused: before the WebSocket handshake (path, host, origin, token, closing) or right after it (protocol-version, server-full). */
  readonly refusedConnections: Counter<'reason'>;
  private readonly decisions: Counter<'kind'>;
  private schedulerDevice: () => SchedulerDeviceFigures | null = () => null;

  constructor(figures: () => StreamFigures[]) {
    const registers = [this.registry];
    const summary = (name: string, help: string) =>
      new Summary({ name, help, labelNames: label, percentiles: PERCENTILES, maxAgeSeconds: 60, ageBuckets: 6, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: label, registers });
    this.block = summary('sinkstream_block_seconds', 'Generator wall time per block');
    this.frames = counter('sinkstream_frames_total', 'Frames generated');
    this.skipped = counter('sinkstream_viewer_skipped_fragments_total', 'Fragments not sent to a viewer that was behind or waiting for a keyframe');
    this.dropped = counter('sinkstream_viewer_dropped_total', 'Viewers disconnected for falling past the hard cap');
    this.restarts = counter('sinkstream_encoder_restarts_total', 'Encoder (ffmpeg) restarts after it died');
    this.controlErrors = new Counter({ name: 'sinkstream_control_errors_total', help: 'Rejected control messages and requests', labelNames: ['code'], registers });
    this.refusedConnections = new Counter({
      name: 'sinkstream_refused_connections_total',
      help: 'WebSocket connections refused: before the handshake (path, host, origin, token, closing) or after it (protocol-version, server-full)',
      labelNames: ['reason'],
      registers,
    });

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
    // The stream's playout ledger (playout-ledger.ts): the one TTFF, latency, jitter and miss count.
    gauge('sinkstream_ttff_seconds', 'Stream created to first frame delivered to viewers (playout ledger)', (f) => (f.ttffMs === null ? null : f.ttffMs / 1000));
    gauge('sinkstream_frames_delivered', 'Frames delivered to viewers (playout ledger)', (f) => f.framesDelivered);
    gauge('sinkstream_deadline_misses', 'Playout slots in which a viewer had no new frame, stalls and encoder restart gaps included (playout ledger)', (f) => f.deadlineMisses);
    gauge('sinkstream_deadline_miss_ratio', 'Missed slots / (frames shown + missed slots) (playout ledger)', (f) => f.missRate);
    const quantiles = (name: string, help: string, pick: (f: StreamFigures) => Percentiles) =>
      new Gauge({
        name,
        help,
        labelNames: ['quantile', 'stream'],
        registers,
        collect() {
          this.reset();
          for (const f of figures()) {
            if (f.framesDelivered === 0) continue;
            const p = pick(f);
            this.set({ quantile: '0.5', stream: f.stream }, p.p50 / 1000);
            this.set({ quantile: '0.95', stream: f.stream }, p.p95 / 1000);
            this.set({ quantile: '0.99', stream: f.stream }, p.p99 / 1000);
          }
        },
      });
    quantiles('sinkstream_frame_latency_seconds', "Per-frame latency: shown minus the frame's place on the stream's timeline, recent frames (playout ledger)", (f) => f.latencyMs);
    quantiles('sinkstream_frame_jitter_seconds', '|latency(n) - latency(n-1)|, recent frames (playout ledger)', (f) => f.jitterMs);
    gauge('sinkstream_target_fps', 'Target frame rate of the stream', (f) => f.targetFps);
    gauge('sinkstream_delivered_fps', 'Frames per second delivered over the last seconds', (f) => f.fps);
    gauge('sinkstream_generation_fps', 'Frames per second of generation time (capacity)', (f) => f.generationFps);
    gauge('sinkstream_cache_occupancy_ratio', 'KV cache frames held / cache capacity', (f) => f.cacheOccupancy);
    gauge('sinkstream_cache_frames', 'KV cache frames held', (f) => f.cache.length);
    gauge('sinkstream_viewers', 'Viewers watching the stream', (f) => f.viewers);
    this.decisions = new Counter({
      name: 'sinkstream_scheduler_decisions_total',
      help: 'Block scheduler decisions: admitted, refused, lowered / raised (quality ladder), stopped, left',
      labelNames: ['kind'],
      registers,
    });
    // The block scheduler's view of each stream: its rung and decisions (what viewers got is above).
    const scheduled = (name: string, help: string, pick: (s: NonNullable<StreamFigures['scheduler']>) => number | null) =>
      gauge(name, help, (f) => (f.scheduler ? pick(f.scheduler) : null));
    scheduled('sinkstream_scheduler_steps', 'Denoising steps the quality ladder gives the stream now', (s) => s.steps);
    scheduled('sinkstream_scheduler_planned_delay_seconds', 'Start-up delay fixed at admission (the latency the scheduler plans each block for)', (s) => s.plannedDelayMs / 1000);
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

  observeBlock(stream: string, frames: number, blockMs: number): void {
    const l = { stream };
    this.block.observe(l, blockMs / 1000);
    this.frames.inc(l, frames);
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
    for (const m of [this.block, this.frames, this.skipped, this.dropped, this.restarts]) {
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
