/** What `sinkstream_build_info` names: the package's version, Node's, and the engine in use. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import type { BuildInfo } from './metrics.js';

let version: string | undefined;

/** The version in the project's package.json (found upwards from this module: src/ or dist/src/). */
export function packageVersion(): string {
  if (version !== undefined) return version;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sinkstream') return (version = pkg.version ?? 'unknown');
    }
    const up = path.dirname(dir);
    if (up === dir) return (version = 'unknown');
    dir = up;
  }
}

export function buildInfo(config: Config): BuildInfo {
  const engine = config.engine.name === 'ort' ? `ort-${config.engine.provider}` : config.engine.name;
  return { version: packageVersion(), node: process.version, engine };
}
