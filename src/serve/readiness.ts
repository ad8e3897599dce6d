/**
 * GET /readyz: would this instance admit a stream now? Ready once the engine is calibrated and the
 * spare generators are built (server.ready()), while it is not draining and has a stream slot
 * left; otherwise not ready, with the reason (`draining` first: it is final).
 */
export type NotReadyReason = 'starting' | 'draining' | 'full';

export type Readiness =
  | { ready: true; streams: number; maxStreams: number }
  | { ready: false; reason: NotReadyReason; message: string; streams: number; maxStreams: number };

export interface ReadinessState {
  draining: boolean;
  /** Calibration and spare generators done. */
  warm: boolean;
  /** Live streams plus those being set up. */
  streams: number;
  maxStreams: number;
}

export function readiness(s: ReadinessState): Readiness {
  const counts = { streams: s.streams, maxStreams: s.maxStreams };
  if (s.draining) return { ready: false, reason: 'draining', message: 'the server is draining (shutting down) and admits no new stream', ...counts };
  if (!s.warm) return { ready: false, reason: 'starting', message: 'the engine is being calibrated and warmed up', ...counts };
  if (s.streams >= s.maxStreams) return { ready: false, reason: 'full', message: `${s.streams} of ${s.maxStreams} streams (serve.maxStreams)`, ...counts };
  return { ready: true, ...counts };
}
