/**
 * Finds the ffmpeg (and ffprobe) binary. Order, first usable wins:
 *   1. the environment (FFMPEG_PATH / FFPROBE_PATH): when set it is the only candidate, so a
 *      wrong value is an error rather than a silent fall-back to another binary;
 *   2. the program on PATH (a system ffmpeg is kept current by its package manager; the npm-shipped
 *      builds below are fixed, years-old releases, so they are only the fall-back);
 *   3. the optional dependency `ffmpeg-static` (its install downloads, so it may be absent);
 *   4. `@ffmpeg-installer/ffmpeg` (`@ffprobe-installer/ffprobe` for ffprobe).
 * A candidate counts only if it is a regular file we may execute. A package's own binary that
 * lost its executable bit (some unpackers drop it) is repaired when we own the file; nothing
 * else is ever chmod-ed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { SinkstreamError } from '../errors.js';

export type BinarySource = 'env' | 'package' | 'PATH';

export interface ResolvedBinary {
  path: string;
  source: BinarySource;
  /** Human-readable origin, e.g. `FFMPEG_PATH`, `@ffmpeg-installer/ffmpeg`, `PATH`. */
  from: string;
}

type Tool = 'ffmpeg' | 'ffprobe';

interface PackageCandidate {
  name: string;
  /** Reads the binary path out of the loaded package (each package exports it differently). */
  pathOf: (exported: unknown) => unknown;
}

const PACKAGES: Record<Tool, PackageCandidate[]> = {
  ffmpeg: [
    { name: 'ffmpeg-static', pathOf: (m) => m },
    { name: '@ffmpeg-installer/ffmpeg', pathOf: (m) => (m as { path?: unknown } | null)?.path },
  ],
  ffprobe: [{ name: '@ffprobe-installer/ffprobe', pathOf: (m) => (m as { path?: unknown } | null)?.path }],
};

const ENV_VAR: Record<Tool, string> = { ffmpeg: 'FFMPEG_PATH', ffprobe: 'FFPROBE_PATH' };

const HOW_TO_GET: Record<Tool, string> = {
  ffmpeg:
    'Set FFMPEG_PATH=/path/to/ffmpeg, or run `npm install @ffmpeg-installer/ffmpeg` (or `npm install ffmpeg-static`), ' +
    'or install ffmpeg on PATH (e.g. `apt-get install ffmpeg`).',
  ffprobe:
    'Set FFPROBE_PATH=/path/to/ffprobe, or run `npm install @ffprobe-installer/ffprobe`, ' +
    'or install ffprobe on PATH (e.g. `apt-get install ffmpeg`).',
};

const require = createRequire(import.meta.url);

/**
 * Why `file` cannot be run, or null when it can. With `repairable`, a file that only lacks its
 * executable bit gets it back (x where r is) if it lies under node_modules and this user owns it.
 */
export function whyNotExecutable(file: string, repairable: boolean): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return 'does not exist';
  }
  if (!stat.isFile()) return 'is not a regular file';
  if (isExecutable(file)) return null;
  if (!repairable) return 'is not executable';
  // Safe repair only: the file is ours (a package binary in node_modules, owned by this user).
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid === undefined || stat.uid !== uid || !file.split(path.sep).includes('node_modules')) {
    return 'is not executable (and is not ours to fix)';
  }
  try {
    const readBits = stat.mode & 0o444;
    fs.chmodSync(file, (stat.mode & 0o7777) | (readBits >> 2));
  } catch {
    return 'is not executable (chmod failed)';
  }
  return isExecutable(file) ? null : 'is not executable';
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function packageBinary(candidate: PackageCandidate): { path?: string; why?: string } {
  let exported: unknown;
  try {
    exported = require(candidate.name);
  } catch (e) {
    const code = (e as { code?: string } | null)?.code;
    return { why: code === 'MODULE_NOT_FOUND' ? 'not installed' : `failed to load (${String((e as Error)?.message ?? e)})` };
  }
  const p = candidate.pathOf(exported);
  if (typeof p !== 'string' || p.length === 0) return { why: 'has no binary for this platform' };
  return { path: p };
}

function onPath(tool: Tool, env: NodeJS.ProcessEnv): string[] {
  const names = process.platform === 'win32' ? [`${tool}.exe`] : [tool];
  const dirs = (env.PATH ?? '').split(path.delimiter).filter((d) => d.length > 0);
  return dirs.flatMap((d) => names.map((n) => path.join(d, n)));
}

function resolveBinary(tool: Tool, env: NodeJS.ProcessEnv): ResolvedBinary {
  const envVar = ENV_VAR[tool];
  const fromEnv = env[envVar];
  if (fromEnv !== undefined && fromEnv !== '') {
    const why = whyNotExecutable(fromEnv, false);
    if (why === null) return { path: fromEnv, source: 'env', from: envVar };
    throw new SinkstreamError(
      'ERR_FFMPEG_MISSING',
      `${envVar}=${fromEnv} ${why}; expected the path of an executable ${tool} binary. ` +
        `Unset ${envVar} to use a bundled ${tool}, or point it at one.`,
    );
  }

  const tried: string[] = [];
  for (const file of onPath(tool, env)) {
    if (whyNotExecutable(file, false) === null) return { path: file, source: 'PATH', from: 'PATH' };
  }
  tried.push(`PATH: no executable ${tool}`);
  for (const candidate of PACKAGES[tool]) {
    const found = packageBinary(candidate);
    if (found.path === undefined) {
      tried.push(`${candidate.name}: ${found.why}`);
      continue;
    }
    const why = whyNotExecutable(found.path, true);
    if (why === null) return { path: found.path, source: 'package', from: candidate.name };
    tried.push(`${candidate.name}: ${found.path} ${why}`);
  }
  throw new SinkstreamError(
    'ERR_FFMPEG_MISSING',
    `No ${tool} binary found (${envVar} unset; tried ${tried.join('; ')}). ${HOW_TO_GET[tool]}`,
  );
}

/** The ffmpeg binary to run. Throws ERR_FFMPEG_MISSING, saying how to get one, when none is usable. */
export function resolveFfmpegPath(env: NodeJS.ProcessEnv = process.env): ResolvedBinary {
  return resolveBinary('ffmpeg', env);
}

/** The ffprobe binary (tests and diagnostics). Throws ERR_FFMPEG_MISSING when none is usable. */
export function resolveFfprobePath(env: NodeJS.ProcessEnv = process.env): ResolvedBinary {
  return resolveBinary('ffprobe', env);
}
