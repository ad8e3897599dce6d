/**
 * `sinkstream bench`'s whole-pipeline section: the engine's calls timed by kind (forwards, cache work),
 * and, from the moments the blocks were handed out, the stream's period split into its phases (forwards, cache, host, decode, encode).
 * The engine is the critical path (decode and encode overlap it): per steady block, the period is the
 * engine's busy time (forwards + cache work) plus the time it stood idle ("host": the loop's own work on
 * the host, and any wait for a decode that did not overlap). Decode and encode are reported beside it
 * with whether they fit in the period.
 */
import type { Engine } from '../../engine/types.js';
import { median } from '../../util/stats.js';

export interface EngineCall {
  kind: 'forward' | 'cache';
  ms: number;
  /** performance.now() when the call resolved. */
  endedAt: number;
}

/** An engine wrapper that times forwards and the cache calls (updateCache, scoreCache, releaseQueries). */
export function callTimedEngine(inner: Engine, calls: EngineCall[]): Engine {
  const timed = async <T>(kind: EngineCall['kind'], work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const result = await work();
    const endedAt = performance.now();
    calls.push({ kind, ms: endedAt - t0, endedAt });
    return result;
  };
  return {
    get name() {
      return inner.name;
    },
    setPrompt: (context) => inner.setPrompt(context),
    forward: (request) => timed('forward', () => inner.forward(request)),
    ...(inner.denoiseSteps ? { denoiseSteps: (request) => timed('forward', () => inner.denoiseSteps!(request)) } : {}),
    updateCache: (update) => timed('cache', () => inner.updateCache(update)),
    scoreCache: (queries, reduce) => timed('cache', () => inner.scoreCache(queries, reduce)),
    releaseQueries: (id) => timed('cache', () => inner.releaseQueries(id)),
    resetCache: () => inner.resetCache(),
    readCache: () => inner.readCache(),
    info: () => inner.info(),
    close: () => inner.close(),
  };
}

export interface PhaseSplit {
  /** Median time between consecutive blocks handed out (blocks 1..N): the stream's period, ms. */
  periodMs: number;
  /** Engine busy time per period (mean over the steady periods), ms. */
  forwardsMs: number;
  cacheMs: number;
  /** The mean period - forwardsMs - cacheMs: the engine idle (host work, waits), ms. */
  hostMs: number;
  /** Median decode of blocks 1..N (overlapped with the engine), ms; null without a decoder. */
  decodeMs: number | null;
  /** Median time the encoder took a block's frames in (blocks 1..N), ms; null without encoding. */
  encodeMs: number | null;
  /** Whether a decode / an encode of one block fits in one period (else that phase bounds the rate). */
  decodeFits: boolean | null;
  encodeFits: boolean | null;
}

/**
 * handedOutAt[b]: when block b was handed out; calls: the engine's calls during the stream (warm-up
 * excluded). A call belongs to the period it ended in; the steady periods are those ending at blocks 1..N.
 */
export function phaseSplit(handedOutAt: number[], calls: EngineCall[], decodeMs: number[], encodeMs: number[]): PhaseSplit {
  const periods: number[] = [];
  let forwards = 0;
  let cache = 0;
  for (let b = 1; b < handedOutAt.length; b++) {
    const from = handedOutAt[b - 1];
    const to = handedOutAt[b];
    periods.push(to - from);
    for (const c of calls) {
      if (c.endedAt <= from || c.endedAt > to) continue;
      if (c.kind === 'forward') forwards += c.ms;
      else cache += c.ms;
    }
  }
  const n = Math.max(1, periods.length);
  const periodMs = periods.length ? median(periods) : 0;
  const forwardsMs = forwards / n;
  const cacheMs = cache / n;
  const decode = decodeMs.length > 1 ? median(decodeMs.slice(1)) : null;
  const encode = encodeMs.length > 1 ? median(encodeMs.slice(1)) : encodeMs.length === 1 ? encodeMs[0] : null;
  return {
    periodMs,
    forwardsMs,
    cacheMs,
    hostMs: Math.max(0, periods.reduce((a, p) => a + p, 0) / n - forwardsMs - cacheMs),
    decodeMs: decode,
    encodeMs: encode,
    decodeFits: decode === null ? null : decode <= periodMs,
    encodeFits: encode === null ? null : encode <= periodMs,
  };
}

/** The targets for the real shape with TAEHV on one H200: reported as met or not, never enforced. */
export const PIPELINE_TARGETS = { videoFps: 40, ttffMs: 250 } as const;
