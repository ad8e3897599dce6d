/**
 * Participative compression under every base policy (own and rephased positions, a small RoPE
 * table, retunes that change its keys or turn it off and on) gives the same engine updates and
 * cache, block by block, as when the fixture was written (helpers/compression-updates.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { driveScenario, scenarios, BLOCKS } from './helpers/compression-updates.js';

const fixture = JSON.parse(
  fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'compression-updates.json'), 'utf8'),
) as Record<string, string[]>;

test('the fixture covers every scenario', () => {
  assert.equal(Object.keys(fixture).sort(), Object.keys(scenarios).sort());
});

for (const name of Object.keys(scenarios)) {
  test(`${name}: ${BLOCKS} blocks of updates byte-identical to the fixture`, () => {
    const hashes = driveScenario(name);
    hashes.forEach((h, b) => assert.is(h, fixture[name][b], `${name} block ${b} differs`));
  });
}

test.run();
