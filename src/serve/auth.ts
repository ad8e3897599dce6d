/**
 * Who may talk to the server: a shared token for creation and control (compared in constant time),
 * an origin allow-list for WebSockets opened by browsers, and, when there is no token (loopback
 * only), a Host check so a page on another site cannot reach the server through DNS rebinding.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

export const TOKEN_ENV = 'SINKSTREAM_TOKEN';

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.', 'ip6-localhost', '::1', '[::1]']);

/** Whether listening on `host` keeps the server to this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  if (LOOPBACK_NAMES.has(h)) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return isIP(h.slice(7)) === 4 && h.slice(7).startsWith('127.');
  return false;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when no token is required, or `given` equals it. */
export function tokenMatches(expected: string | undefined, given: string | undefined | null): boolean {
  if (expected === undefined) return true;
  if (typeof given !== 'string') return false;
  return timingSafeEqual(digest(expected), digest(given));
}

/**
 * The token a request carries: `Authorization: Bearer <t>` or `X-Sinkstream-Token: <t>`; for
 * WebSocket upgrades also `?token=<t>` (a browser cannot set headers on a WebSocket).
 */
export function tokenOf(req: IncomingMessage, url: URL, allowQuery: boolean): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const header = req.headers['x-sinkstream-token'];
  if (typeof header === 'string') return header;
  if (allowQuery) return url.searchParams.get('token');
  return null;
}

/** The hostname part of a Host header (`[::1]:8080` -> `::1`, `a.b:80` -> `a.b`). */
function hostnameOf(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

export interface AccessPolicy {
  token: string | undefined;
  /** Extra origins allowed to open WebSockets (exact `scheme://host[:port]`). */
  origins: readonly string[];
}

/**
 * Without a token the server listens on loopback only; then the Host header must name a loopback
 * address (a rebinding page would send its own name). With a token, any Host is fine.
 */
export function hostAllowed(req: IncomingMessage, policy: AccessPolicy): boolean {
  if (policy.token !== undefined) return true;
  const host = req.headers.host;
  if (typeof host !== 'string') return false;
  return isLoopbackHost(hostnameOf(host));
}

/**
 * A browser's WebSocket carries Origin: it must be the server's own origin or an allowed one.
 * Clients that send no Origin (not browsers) pass; they still need the token.
 */
export function originAllowed(req: IncomingMessage, policy: AccessPolicy): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (policy.origins.includes(origin)) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  const host = req.headers.host;
  return (parsed.protocol === 'http:' || parsed.protocol === 'https:') && typeof host === 'string' && parsed.host === host.toLowerCase();
}
