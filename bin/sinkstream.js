#!/usr/bin/env node
// Runs the compiled CLI (built by `npm ci` through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/src/cli/run.js', import.meta.url));
if (!existsSync(compiled)) {
  process.stderr.write('sinkstream: the compiled CLI is missing (dist/). Run `npm run build` (npm ci does it).\n');
  process.exit(1);
}
await import(compiled);
