/**
 * Finds, checks and loads the optional CUDA addon (the sharp / node-llama-cpp pattern).
 *
 * Load order: the path in SINKSTREAM_NATIVE_ADDON, then the local build native/build/sinkstream_native.node,
 * then nothing. A candidate is first loaded in a child process that also asks the driver for its
 * devices, so a broken build or driver cannot take down this process. Nothing is ever downloaded
 * or built here: `npm run build:native` builds the addon where CUDA is present.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SinkstreamError } from '../../errors.js';
import { NATIVE_ABI_VERSION, type NativeAddon } from './addon-types.js';

export const ADDON_ENV = 'SINKSTREAM_NATIVE_ADDON';
export const ADDON_FILE = 'sinkstream_native.node';

export const HOW_TO_BUILD =
  'Build it with `npm run build:native` (bash scripts/build-native.sh) on a machine with an NVIDIA GPU, the CUDA toolkit ' +
  '(nvcc, cuBLASLt) and g++, or point SINKSTREAM_NATIVE_ADDON at a built sinkstream_native.node; ' +
  'otherwise use engine.name: ort (see docs/native.md).';

export interface ProbeResult {
  abi: number;
  devices: number;
  names: string[];
}

/** The repository / package root: the nearest folder above this file whose package.json is sinkstream's. */
export function packageRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sinkstream') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
}

/** Candidate paths in load order, with where each came from. */
export function addonCandidates(env: NodeJS.ProcessEnv = process.env): { path: string; from: string }[] {
  const out: { path: string; from: string }[] = [];
  const fromEnv = env[ADDON_ENV];
  if (fromEnv) out.push({ path: path.resolve(fromEnv), from: ADDON_ENV });
  out.push({ path: path.join(packageRoot(), 'native', 'build', ADDON_FILE), from: 'the local build' });
  return out;
}

const probeScript = `
const m = require(process.argv[1]);
const devices = m.deviceCount();
const names = [];
for (let i = 0; i < devices; i++) names.push(m.deviceName(i));
process.stdout.write(JSON.stringify({ abi: m.abiVersion(), devices, names }));
`;

/** Loads the addon at `file` in a child process and asks it for the devices; throws on any failure. */
export function probeAddon(file: string, timeoutMs = 120_000): ProbeResult {
  const r = spawnSync(process.execPath, ['-e', probeScript, file], { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw new Error(`the probe process failed: ${r.error.message}`);
  if (r.status !== 0) {
    const why = (r.stderr || '').trim().split('\n').filter(Boolean).slice(-3).join(' | ') || `exit status ${r.status ?? r.signal}`;
    throw new Error(why);
  }
  const result = JSON.parse(r.stdout) as ProbeResult;
  if (result.abi !== NATIVE_ABI_VERSION) throw new Error(`ABI version ${result.abi}, this runtime needs ${NATIVE_ABI_VERSION}: rebuild it`);
  return result;
}

const loaded = new Map<string, { addon: NativeAddon; probe: ProbeResult }>();

/**
 * The first candidate that exists and passes the probe, loaded into this process. Throws
 * ERR_ENGINE_UNAVAILABLE naming every candidate and why it was refused, and how to build the addon.
 */
export function loadNativeAddon(env: NodeJS.ProcessEnv = process.env): { addon: NativeAddon; probe: ProbeResult; path: string } {
  const refused: string[] = [];
  for (const c of addonCandidates(env)) {
    const hit = loaded.get(c.path);
    if (hit) return { ...hit, path: c.path };
    if (!existsSync(c.path)) {
      refused.push(`${c.path} (${c.from}): not found`);
      if (c.from === ADDON_ENV) break; // an explicit path that is wrong must not silently fall through
      continue;
    }
    let probe: ProbeResult;
    try {
      probe = probeAddon(c.path);
    } catch (e) {
      refused.push(`${c.path} (${c.from}): does not load: ${(e as Error).message}`);
      if (c.from === ADDON_ENV) break;
      continue;
    }
    const addon = createRequire(import.meta.url)(c.path) as NativeAddon;
    loaded.set(c.path, { addon, probe });
    return { addon, probe, path: c.path };
  }
  throw new SinkstreamError(
    'ERR_ENGINE_UNAVAILABLE',
    `engine.name 'native': the CUDA addon is not available. Tried ${refused.join('; ')}. ${HOW_TO_BUILD}`,
  );
}
