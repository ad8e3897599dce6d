/** generation.guidance, generation.openingGuidance and generation.negativePrompt: defaults (guidance off) and refusals. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { generationSection } from '../../src/config/schema.js';
import { SinkstreamError } from '../../src/errors.js';

function configError(set: string[]): SinkstreamError {
  try {
    loadConfig({ set });
  } catch (e) {
    assert.instance(e, SinkstreamError);
    return e as SinkstreamError;
  }
  throw new assert.Assertion({ message: `loadConfig accepted ${set.join(' ')}`, details: '', generated: true, operator: 'throws', expects: 'an error', actual: 'none' });
}

test('defaults: guidance 1 (off), no negative prompt', () => {
  const config = loadConfig({});
  assert.is(config.generation.guidance, 1);
  assert.is(config.generation.negativePrompt, '');
});

test('guidance 0 and above are taken (0: the unconditional flow alone); a negative prompt is a string', () => {
  assert.is(loadConfig({ set: ['generation.guidance=0'] }).generation.guidance, 0);
  assert.is(loadConfig({ set: ['generation.guidance=2.5'] }).generation.guidance, 2.5);
  assert.is(loadConfig({ set: ['generation.negativePrompt=a gray square'] }).generation.negativePrompt, 'a gray square');
});

test('a negative or non-numeric guidance is refused, naming generation.guidance', () => {
  for (const value of ['-1', '-0.5', 'strong']) {
    const e = configError([`generation.guidance=${value}`]);
    assert.is(e.code, 'ERR_CONFIG_INVALID');
    assert.match(e.message, 'generation.guidance');
  }
});

test('openingGuidance: null by default (the opening follows guidance), a number from the command line, refused when negative', () => {
  assert.is(loadConfig({}).generation.openingGuidance, null);
  assert.is(generationSection.parse({}).openingGuidance, null);
  assert.is(loadConfig({ set: ['generation.openingGuidance=3'] }).generation.openingGuidance, 3);
  assert.is(loadConfig({ set: ['generation.openingGuidance=null'] }).generation.openingGuidance, null);
  for (const value of ['-1', 'strong']) {
    const e = configError([`generation.openingGuidance=${value}`]);
    assert.is(e.code, 'ERR_CONFIG_INVALID');
    assert.match(e.message, 'generation.openingGuidance');
  }
});

test.run();
