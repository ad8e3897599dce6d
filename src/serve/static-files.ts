/**
 * The viewer page: plain files under src/serve/public, served as they are (no build step). Only
 * the files listed here are served, so no request path can reach anything else on disk.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/viewer.js': { file: 'viewer.js', type: 'text/javascript; charset=utf-8' },
  '/viewer.css': { file: 'viewer.css', type: 'text/css; charset=utf-8' },
};

/** src/serve/public beside this file; from dist/src/serve, the source tree's copy. */
export function publicDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'public'), path.resolve(here, '../../../src/serve/public')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? candidates[0];
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** The page declares no icon (index.html); a client that asks anyway gets an empty answer, not a 404. */
const FAVICON = '/favicon.ico';

/** Whether `pathname` is one of the viewer's files (served to GET and HEAD only). */
export function isStaticPath(pathname: string): boolean {
  return pathname === FAVICON || Object.hasOwn(FILES, pathname);
}

/** Serves `pathname` if it is one of the viewer's files; returns false otherwise. */
export async function serveStatic(pathname: string, res: ServerResponse, dir = publicDir()): Promise<boolean> {
  if (pathname === FAVICON) {
    res.writeHead(204, { 'cache-control': 'max-age=86400' });
    res.end();
    return true;
  }
  const entry = Object.hasOwn(FILES, pathname) ? FILES[pathname] : undefined;
  if (!entry) return false;
  let body: Buffer;
  try {
    body = await readFile(path.join(dir, entry.file));
  } catch {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`viewer file ${entry.file} is missing from ${dir}\n`);
    return true;
  }
  res.writeHead(200, { 'content-type': entry.type, 'content-length': body.length, ...SECURITY_HEADERS });
  res.end(body);
  return true;
}
