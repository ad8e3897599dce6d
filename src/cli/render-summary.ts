/**
 * The summary of one `sinkstream render`, as `render --json` prints it (one JSON object on stdout,
 * like `bench --json`). Built from what the render measured; no field is estimated.
 */
import { median } from '../util/stats.js';
import type { RanOn } from './ran-on.js';

/** How the render ended: its length reached, Ctrl-C / SIGTERM, or the block scheduler stopped it (--realtime). */
export type RenderStatus = 'finished' | 'interrupted' | 'stopped';

export interface RenderRealtimeSummary {
  targetFps: number;
  ttffMs: number | null;
  latencyP50Ms: number;
  latencyP99Ms: number;
  jitterP99Ms: number;
  missedDeadlines: number;
  framesDelivered: number;
}

/** engine, enginePrecision, attention, decoderRuntime: what really ran (ran-on.ts), not the config's keys. */
export interface RenderSummary extends RanOn {
  status: RenderStatus;
  /** Why the render ended before its length (the signal, or the scheduler's reason); null when it finished. */
  reason: string | null;
  /** The process's exit status: 0, or 130 after an interrupt. */
  exitCode: number;
  /** Absolute path of the MP4. */
  output: string;
  framesRequested: number;
  /** Frames handed to ffmpeg. */
  framesGenerated: number;
  /** Frames the finished file holds (fewer than framesGenerated when Ctrl-C reached ffmpeg too). */
  framesWritten: number;
  /** Video rate of the file (generation.fps). */
  fps: number;
  /** framesWritten / fps. */
  videoSeconds: number;
  width: number;
  height: number;
  /** Wall time of the render, s (from the generator's first block to the file's close). */
  seconds: number;
  /** framesGenerated / seconds: video frames generated per wall second. */
  generatedFps: number;
  blocks: number;
  /** Blocks by denoising steps, e.g. { "4": 30, "3": 2 }. */
  blocksBySteps: Record<string, number>;
  /** Median wall time of a block, blocks 1..N (block 0 pays one-time costs); block 0's when it is the only one. */
  msPerBlock: number | null;
  firstBlockMs: number | null;
  /** Median time decoding latents to pixels per block, same blocks as msPerBlock. */
  decodeMsPerBlock: number | null;
  /** Decode time of all blocks together. */
  decodeMsTotal: number;
  /** decoder.kind */
  decoder: string;
  cache: string;
  /** --realtime: the scheduled stream's playout; null offline. */
  realtime: RenderRealtimeSummary | null;
}

export interface RenderMeasurements {
  /** Wall ms of each block, in order. */
  blockMs: readonly number[];
  /** Decode ms of each block, in order. */
  decodeMs: readonly number[];
}

/** Medians over blocks 1..N, or block 0 alone; null without blocks. */
function steadyMedian(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  return median(values.length > 1 ? values.slice(1) : values);
}

export function blockFigures(m: RenderMeasurements): Pick<RenderSummary, 'msPerBlock' | 'firstBlockMs' | 'decodeMsPerBlock' | 'decodeMsTotal'> {
  return {
    msPerBlock: steadyMedian(m.blockMs),
    firstBlockMs: m.blockMs.length > 0 ? m.blockMs[0] : null,
    decodeMsPerBlock: steadyMedian(m.decodeMs),
    decodeMsTotal: m.decodeMs.reduce((a, b) => a + b, 0),
  };
}

/** One line of JSON; non-finite numbers become null (JSON has no NaN). */
export function formatRenderSummary(summary: RenderSummary): string {
  return JSON.stringify(summary, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value)) + '\n';
}
