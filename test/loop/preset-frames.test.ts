/**
 * Every preset renders the same frames, block by block, as when the fixture was written (a fixed
 * seed, two prompt switches and a retune: helpers/preset-frames.ts). A refactor of the loop or the
 * cache that changes one byte of one frame, or what the cache held, fails here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { presetNames, renderPreset, BLOCKS, type BlockHashes } from './helpers/preset-frames.js';

const fixture = JSON.parse(
  fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'preset-frames.json'), 'utf8'),
) as Record<string, BlockHashes[]>;

test('the fixture covers every preset', () => {
  assert.equal(Object.keys(fixture).sort(), presetNames());
});

for (const name of presetNames()) {
  test(`${name}: ${BLOCKS} blocks byte-identical to the fixture`, async () => {
    const hashes = await renderPreset(name);
    hashes.forEach((h, b) => {
      assert.is(h.frames, fixture[name][b].frames, `${name} block ${b}: frames differ`);
      assert.is(h.cache, fixture[name][b].cache, `${name} block ${b}: cache view differs`);
    });
  });
}

test.run();
