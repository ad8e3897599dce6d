/**
 * A stream's first picture does not wait for its engine to be built: the server keeps a spare
 * generator (a worker with the engine built ahead); a stream takes it and a new spare is made.
 * Real workers and the default demo model.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpareGenerators } from '../../src/serve/generator-host.js';
import { isSinkstreamError } from '../../src/errors.js';
import { testConfig } from './helpers/server-fixture.js';

test('a stream takes the spare (its engine already built), then a new spare is made; a bad prompt is still refused', async () => {
  const config = testConfig();
  const spares = new SpareGenerators(config, 1, 0);
  try {
    spares.fill();
    assert.is(spares.size, 1);
    await spares.ready();
    const first = await spares.create({ ...config, generation: { ...config.generation, prompt: 'a blue square bouncing on a dark blue background' } });
    try {
      assert.is(first.startedWarm, true, 'built before the stream asked');
      assert.ok(first.width > 0 && first.height > 0);
      const block = await first.next();
      assert.is(block.frames.length > 0, true);
    } finally {
      await first.close();
    }
    // refilled (delay 0 here): the next stream gets a spare too
    await new Promise((r) => setTimeout(r, 10));
    assert.is(spares.size, 1);
    await spares.ready();
    try {
      await spares.create({ ...config, generation: { ...config.generation, prompt: 'zzqx unknownword' } });
      assert.unreachable('a prompt outside the vocabulary is refused');
    } catch (e) {
      assert.ok(isSinkstreamError(e) && e.isBadInput, String(e));
    }
  } finally {
    await spares.close();
  }
});

test('with no spare a stream builds its own generator', async () => {
  const config = testConfig();
  const spares = new SpareGenerators(config, 0);
  try {
    spares.fill();
    assert.is(spares.size, 0);
    const g = await spares.create(config);
    assert.is(g.startedWarm, false);
    await g.close();
  } finally {
    await spares.close();
  }
});

test.run();
