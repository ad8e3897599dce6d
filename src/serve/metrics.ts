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
