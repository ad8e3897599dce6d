/**
 * Every preset renders the same video, block by block, as when the fixture was written (a fixed seed,
 * two prompt switches and a retune: helpers/preset-frames.ts): what the cache held exactly, the frames
 * to within LEVELS of each 16x16 cell's mean (helpers/preset-frames.ts says why not byte for byte). A
 * refactor of the loop or the cache that changes what the cache keeps, or the pictures, fails here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { presetNames, renderPreset, BLOCKS, type BlockHashes } from './helpers/preset-frames.js';

/** Largest difference of a cell mean (0..255) between this render and the fixture's. */
const LEVELS = 4;

const fixture = JSON.parse(
  fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'preset-frames.json'), 'utf8'),
) as Record<string, BlockHashes[]>;

test('the fixture covers every preset', () => {
  assert.equal(Object.keys(fixture).sort(), presetNames());
});

for (const name of presetNames()) {
  test(`${name}: ${BLOCKS} blocks as in the fixture`, async () => {
    const blocks = await renderPreset(name);
    blocks.forEach((h, b) => {
      const want = fixture[name][b];
      assert.is(h.cache, want.cache, `${name} block ${b}: cache view differs`);
      assert.is(h.thumbnails.length, want.thumbnails.length, `${name} block ${b}: frame count`);
      const worst = Math.max(...h.thumbnails.flatMap((t, f) => t.map((v, i) => Math.abs(v - want.thumbnails[f][i]))));
      assert.ok(worst <= LEVELS, `${name} block ${b}: a cell's mean differs by ${worst.toFixed(2)} levels (at most ${LEVELS})`);
    });
  });
}

test.run();
