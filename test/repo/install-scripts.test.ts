// Which dependencies may run install scripts is a reviewed decision (package.json's allowScripts, which npm 12 enforces
// and npm 11 reports): every package of the lockfile that has one must be named there, so a new dependency with an
// install script fails here until someone decides.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(root, file), 'utf8')) as Record<string, unknown>;

test('every locked package with an install script has an allowScripts decision', () => {
  const allow = (readJson('package.json').allowScripts ?? {}) as Record<string, boolean>;
  const lock = readJson('package-lock.json').packages as Record<string, { hasInstallScript?: boolean }>;
  const withScripts = Object.entries(lock)
    .filter(([, entry]) => entry.hasInstallScript)
    .map(([where]) => where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.ok(withScripts.length > 0, 'the lockfile lists packages with install scripts');
  const undecided = [...new Set(withScripts)].filter((name) => typeof allow[name] !== 'boolean');
  assert.equal(undecided, [], `packages with install scripts and no allowScripts entry: ${undecided.join(', ')}`);
});

test.run();
