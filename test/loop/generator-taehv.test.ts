/** The generator with a streaming decoder whose first block is shorter (TAEHV): frame numbering and counts. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { createGenerator } from '../../src/loop/generator.js';

test('TAEHV blocks: 9, 12, 12 frames numbered from 0, 9, 21; framesPerBlock is the steady 12', async () => {
  const config = configSchema.parse({
    model: { arch: { latentChannels: 16, dim: 32, layers: 1, heads: 1, ffnDim: 64 }, latentHeight: 4, latentWidth: 4 },
    generation: { steps: [1000, 500] },
    decoder: { kind: 'taehv', taehv: { channels: [8, 8, 4, 4] } },
    engine: { threads: 1 },
  });
  const generator = await createGenerator(config);
  try {
    assert.is(generator.framesPerBlock, 12);
    assert.equal([generator.framesOfBlock(0), generator.framesOfBlock(1), generator.framesOfBlock(7)], [9, 12, 12]);
    assert.equal([generator.width, generator.height], [32, 32]);
    const blocks = [await generator.next(), await generator.next(), await generator.next()];
    assert.equal(blocks.map((b) => b.firstFrame), [0, 9, 21]);
    assert.equal(blocks.map((b) => b.frames.length), [9, 12, 12]);
    for (const b of blocks) for (const f of b.frames) assert.is(f.length, 32 * 32 * 3);
    assert.ok(blocks.every((b) => b.timings.decodeMs > 0));
  } finally {
    await generator.close();
  }
});

test.run();
