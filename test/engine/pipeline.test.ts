/**
 * The pipeline engine end to end: the loop over a 2- and a 3-stage pipeline makes the same video as
 * one engine; stage ranges and impossible stage keys. (The engine contract suite runs on it too.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { stageRanges } from '../../src/engine/pipeline-engine.js';
import { createGenerator } from '../../src/loop/generator.js';
import { SinkstreamError } from '../../src/errors.js';
import { maxByteDifference } from '../helpers/frames.js';

const base = ['model.weights=synthetic', 'model.arch.layers=3', 'engine.threads=1', 'generation.opening=noise', 'generation.seed=9'];

async function frames(set: string[]): Promise<Uint8Array[]> {
  const g = await createGenerator(loadConfig({ set: [...base, ...set] }));
  try {
    const out: Uint8Array[] = [];
    for (let b = 0; b < 3; b++) out.push(...(await g.next()).frames);
    return out;
  } finally {
    await g.close();
  }
}

test('a 2-stage and a 3-stage pipeline render the same frames as one engine', async () => {
  const one = await frames([]);
  const two = await frames(['engine.stages=2']);
  const three = await frames(['engine.stages=3']);
  assert.ok(maxByteDifference(one, two) <= 1, 'two stages');
  assert.ok(maxByteDifference(one, three) <= 1, 'three stages');
  const other = await frames(['generation.seed=10']);
  assert.ok(maxByteDifference(one, other) > 1, 'the comparison can fail');
});

test('stage ranges: as equal as the layers allow, or as given', () => {
  assert.equal(stageRanges(loadConfig({ set: ['model.arch.layers=4', 'engine.stages=3'] })), [[0, 2], [2, 3], [3, 4]]);
  assert.equal(stageRanges(loadConfig({ set: ['model.arch.layers=4', 'engine.stages=2', 'engine.stageLayers=[1,3]'] })), [[0, 1], [1, 4]]);
});

test('impossible stage keys are configuration errors naming the key', () => {
  const refused = (set: string[], key: string) => {
    try {
      loadConfig({ set });
    } catch (e) {
      assert.instance(e, SinkstreamError);
      assert.is((e as SinkstreamError).code, 'ERR_CONFIG_INVALID');
      assert.ok((e as Error).message.includes(key), (e as Error).message);
      return;
    }
    assert.unreachable(`${set.join(' ')} was accepted`);
  };
  refused(['model.arch.layers=4', 'engine.stages=5'], 'engine.stages');
  refused(['engine.stages=2', 'engine.devices=[0]', 'engine.name=native'], 'engine.devices');
  refused(['engine.stages=2', 'engine.devices=[0,1]'], 'engine.devices');
  refused(['model.arch.layers=4', 'engine.stages=2', 'engine.stageLayers=[1,2]'], 'engine.stageLayers');
  refused(['model.arch.layers=4', 'engine.stages=2', 'engine.stageLayers=[4]'], 'engine.stageLayers');
});

test.run();
