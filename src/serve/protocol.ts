/**
 * The wire protocol between the server and viewers/controllers.
 *
 * WebSocket `/ws?v=<PROTOCOL_VERSION>&token=<token>`:
 *   client -> server: small JSON control messages (`controlMessage` below), one per text frame;
 *   server -> client: JSON text frames (`ServerMessage`) and binary frames of fMP4 media. A binary
 *   frame right after a `{type:'init'}` text frame is an init segment (ftyp+moov); every other
 *   binary frame is one moof+mdat fragment. A viewer's first fragment after an init starts with a
 *   keyframe.
 * HTTP: the same create/prompt/retune bodies under /api/streams (see http-api.ts).
 */
import { z } from 'zod';
import { cacheSection, generationSection } from '../config/schema.js';

export const PROTOCOL_VERSION = 1;

/** WebSocket close codes (4000-4999 are the application's). */
export const CloseCode = {
  /** The client asked for a protocol version this server does not speak. */
  PROTOCOL_VERSION: 4001,
  /** The server is at its connection limit (serve.maxViewers). */
  SERVER_FULL: 4029,
  /** The viewer fell further behind than serve.viewerHardCapBytes, or read nothing for serve.stalledViewerSeconds while skipping. */
  TOO_SLOW: 4008,
  /** The server is shutting down. */
  GOING_AWAY: 1001,
} as const;

/** Error codes carried by `{type:'error'}` replies and HTTP error bodies. */
export type ProtocolErrorCode =
  | 'bad-json'
  | 'bad-message'
  | 'binary-not-accepted'
  | 'unauthorized'
  | 'not-found'
  | 'stream-limit'
  /** The scheduler refused the stream: it cannot run it while every stream keeps its objectives. */
  | 'over-capacity'
  /** The server is draining (SIGTERM) or shutting down: it admits no new stream; try another instance. */
  | 'draining'
  | 'invalid-config'
  /** The prompt cannot be encoded (ERR_PROMPT, e.g. precomputed contexts without one for it); the stream keeps its prompt. */
  | 'bad-prompt'
  | 'stream-failed'
  | 'internal';

/**
 * A config section as a patch: every key optional and without its default (so a patch names only
 * what it changes), nested sections likewise; unknown keys rejected.
 */
type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

function patchOf<T extends z.ZodObject>(section: T): z.ZodType<DeepPartial<z.output<T>>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, field] of Object.entries(section.shape as Record<string, z.ZodType>)) {
    let inner: z.ZodType = field;
    while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional) {
      inner = inner.unwrap() as z.ZodType;
    }
    shape[key] = (inner instanceof z.ZodObject ? patchOf(inner) : inner).optional();
  }
  return z.object(shape).strict() as never;
}

const streamId = z.string().regex(/^[a-z0-9-]{1,40}$/, 'a stream id (lowercase letters, digits, dashes)');
const prompt = z.string().trim().min(1).max(1000);
const requestId = z.number().int().nonnegative().max(2 ** 31).optional();

/**
 * Per-stream overrides a client may send: generation and cache settings only. Everything that names a
 * file or a device (model, text, decoder, engine, output, serve) stays the server operator's.
 */
export const cacheOverrides = patchOf(cacheSection);
export const streamOverrides = z
  .object({
    generation: patchOf(generationSection.omit({ prompt: true })).optional(),
    cache: cacheOverrides.optional(),
  })
  .strict();
export type StreamOverrides = z.infer<typeof streamOverrides>;
export type CachePatch = z.infer<typeof cacheOverrides>;

export const createBody = z
  .object({
    prompt,
    overrides: streamOverrides.optional(),
    /** Also record the stream to serve.recordDir/<id>.mp4. */
    record: z.boolean().optional(),
  })
  .strict();
export const promptBody = z.object({ prompt }).strict();
export const retuneBody = z.object({ cache: cacheOverrides }).strict();

export const controlMessage = z.discriminatedUnion('type', [
  createBody.extend({ type: z.literal('create'), req: requestId, watch: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('watch'), req: requestId, stream: streamId }).strict(),
  z.object({ type: z.literal('unwatch'), req: requestId }).strict(),
  z.object({ type: z.literal('prompt'), req: requestId, stream: streamId, prompt }).strict(),
  z.object({ type: z.literal('retune'), req: requestId, stream: streamId, cache: cacheOverrides }).strict(),
  z.object({ type: z.literal('stop'), req: requestId, stream: streamId }).strict(),
  z.object({ type: z.literal('list'), req: requestId }).strict(),
  z.object({ type: z.literal('ping'), req: requestId }).strict(),
]);
export type ControlMessage = z.infer<typeof controlMessage>;

export interface CacheSlotView {
  frame: number;
  role: string;
  position: number;
}

export interface StreamInfo {
  id: string;
  prompt: string;
  state: 'starting' | 'running' | 'stopping' | 'ended' | 'failed';
  width: number;
  height: number;
  fps: number;
  viewers: number;
  /** The recording's file name in serve.recordDir (`<id>.mp4`; the server's own paths are not shown to clients), or null. */
  recording: string | null;
  /** Whether the stream is being recorded (such a stream never stops for want of viewers). */
  records: boolean;
  /**
   * When the stream stops for want of viewers (serve.idleStopSeconds): the time and the seconds left;
   * or, while it will not, why: it has viewers, it records, the rule is off, or it is stopping already.
   */
  idleStop: { pending: true; at: string; inSeconds: number } | { pending: false; reason: 'watched' | 'recording' | 'disabled' | 'stopped' };
  cache: { policy: string; sink: number; window: number };
  createdAt: string;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/**
 * Figures of one stream, pushed to viewers (`{type:'stats'}`) and exported at /metrics. TTFF,
 * latency, jitter and misses are the stream's playout ledger's (playout-ledger.ts), the one
 * definition of each; the rest describe generation and delivery.
 */
export interface StreamFigures {
  stream: string;
  /** Create -> first frame delivered to viewers, ms; null until then. */
  ttffMs: number | null;
  /** Create -> first frame out of the generator, ms. */
  ttfgMs: number | null;
  /** Frames generated. */
  frames: number;
  /** Frames delivered to viewers (handed to them as fragments). */
  framesDelivered: number;
  blocks: number;
  targetFps: number;
  /** Frames delivered per second over the last few seconds (wall clock). */
  fps: number;
  /** Frames per second of generation time (frames / sum of block times): the capacity. */
  generationFps: number;
  /** Per-frame latency: shown minus the frame's place on the stream's timeline, ms (recent frames). */
  latencyMs: Percentiles;
  /** Block wall times as the generator measured them, ms (recent blocks). */
  blockMs: Percentiles;
  /** |latency(n) - latency(n-1)|, ms (recent frames). */
  jitterMs: Percentiles;
  /** Playout slots in which a viewer had no new frame (stalls, encoder restart gaps). */
  deadlineMisses: number;
  /** Missed slots / (frames shown + missed slots). */
  missRate: number;
  /** Held frames / cache window. */
  cacheOccupancy: number;
  cache: CacheSlotView[];
  viewers: number;
  skippedFragments: number;
  droppedViewers: number;
  encoderRestarts: number;
  /** The block scheduler's view of the stream (absent when the stream runs unscheduled). */
  scheduler?: SchedulerFigures;
}

/**
 * What the scheduler says of a stream: its rung on the quality ladder and its decisions. (Its
 * deadlines are its own planning; what viewers got is the stream's figures above.)
 */
export interface SchedulerFigures {
  device: string | null;
  state: string;
  targetFps: number;
  /** Denoising steps the ladder gives the stream's blocks now. */
  steps: number;
  /** The generator's full step count (the top rung). */
  fullSteps: number;
  /** Start-up delay fixed at admission: the latency the scheduler plans each block for, ms. */
  plannedDelayMs: number;
  /** Finished blocks by step count, e.g. { "4": 10, "3": 2 }. */
  blocksBySteps: Record<string, number>;
  /** The latest decisions about this stream (admitted, lowered, raised, stopped), newest last. */
  decisions: Array<{ kind: string; message: string }>;
}

export type ServerMessage =
  | { type: 'hello'; version: number; limits: { maxMessageBytes: number; maxStreams: number; maxViewers: number }; streams: StreamInfo[] }
  | { type: 'created'; req?: number; stream: StreamInfo }
  | { type: 'watching'; req?: number; stream: StreamInfo }
  | { type: 'unwatched'; req?: number }
  | { type: 'ok'; req?: number; op: string; stream?: StreamInfo }
  | { type: 'streams'; req?: number; streams: StreamInfo[] }
  | { type: 'pong'; req?: number }
  | { type: 'init'; stream: string; codec: string | null; width: number; height: number; reason: 'start' | 'join' | 'encoder-restart' }
  /**
   * The stream's encoder was replaced: it died (`died`) or wrote nothing while frames waited
   * (`stalled`, the watchdog). The picture resumes at the new encoder's `init`.
   */
  | { type: 'encoder-restarted'; stream: string; cause: 'died' | 'stalled'; restarts: number; message: string }
  | { type: 'stats'; figures: StreamFigures }
  | { type: 'ended'; stream: string; reason: string }
  | { type: 'error'; req?: number; code: ProtocolErrorCode; message: string };

/** One line naming what is wrong with a message, from zod's issues. */
export function describeProblem(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => {
      const at = i.path.length ? i.path.join('.') : 'message';
      if (i.code === 'unrecognized_keys') return `${at}: unknown key(s) ${i.keys.join(', ')}`;
      return `${at}: ${i.message}`;
    })
    .join('; ');
}
