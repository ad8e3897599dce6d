/**
 * The HTTP API's plumbing: the status each protocol error code gets, and error replies. The routes
 * themselves (/v1/streams, /v1/renders, /v1/recordings, and /api/streams for the viewer page and
 * earlier clients) are one table in api-v1.ts, served by api-router.ts and documented at /openapi.json.
 * Token in `Authorization: Bearer <token>` (or X-Sinkstream-Token). Errors are
 * {error: {code, message}} with 400, 401, 404, 405, 413, 415, 429 (the render queue is full), 500 or
 * 503 (this instance cannot take the stream now: full, `stream-limit`; the scheduler refused it,
 * `over-capacity`; or it is draining, `draining`: a load balancer retries such a create elsewhere).
 * POST bodies must be application/json, which a cross-site form cannot send without a CORS preflight
 * (never granted).
 */
import type { ServerResponse } from 'node:http';
import { sendJson } from './api-router.js';
import type { ProtocolErrorCode } from './protocol.js';

export { sendJson };

const STATUS: Record<ProtocolErrorCode, number> = {
  'bad-json': 400,
  'bad-message': 400,
  'binary-not-accepted': 415,
  unauthorized: 401,
  'not-found': 404,
  'stream-limit': 503,
  'over-capacity': 503,
  draining: 503,
  'invalid-config': 400,
  'bad-prompt': 400,
  'stream-failed': 500,
  internal: 500,
};

export function sendError(res: ServerResponse, code: ProtocolErrorCode, message: string, status = STATUS[code]): void {
  sendJson(res, status, { error: { code, message } });
}

/** The HTTP status of an error code. */
export function statusOf(code: ProtocolErrorCode): number {
  return STATUS[code];
}
