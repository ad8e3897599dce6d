/**
 * Sparse attention over the cache on the ONNX Runtime engine with the bundled demo model
 * (configs/default.yaml): the engine attends the packed cache (fewer rows), the blocks render.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import { modelDims } from '../../src/model/dims.js';

test('the demo model renders with cache.sparse.stride=3: far frames packed into one slot, fewer rows attended', async () => {
  const config = loadConfig({ set: ['engine.threads=1', 'cache.sparse.stride=3'] });
  const T = modelDims(config).tokensPerFrame;
  const g = await createGenerator(config);
  try {
    const caches: string[] = [];
    const rows: number[] = [];
    for (let b = 0; b < 6; b++) {
      const block = await g.next();
      assert.is(block.frames.length, 3);
      assert.ok(block.frames.every((f) => f.some((v) => v !== block.frames[0][0])), `block ${b} frames are not flat`);
      caches.push(block.cache.map((h) => (h.role === 'sparse' ? `[${h.packed!.join('+')}]` : String(h.frame))).join(' '));
      rows.push(g.engineInfo().cacheRows / T);
    }
    assert.equal(caches.slice(3), ['0 1 2 [3+4+5] 6 7 8', '0 1 2 [6+7+8] 9 10 11', '0 1 2 [9+10+11] 12 13 14']);
    assert.equal(rows.slice(3), [7, 7, 7], 'frames of rows the engine attends (dense: 9)');
  } finally {
    await g.close();
  }
});

test.run();
