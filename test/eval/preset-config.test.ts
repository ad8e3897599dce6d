/**
 * The evaluation's configuration of one preset: the preset's cache section replaces the base configuration's, and
 * the user's `--set cache.*` keys apply on top of every preset's (they used to be replaced with the section, so
 * `eval --set cache.sparse.stride=3` measured the dense caches while the report listed the override).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { presetConfig, presetOfBaseCache } from '../../src/eval/run-eval.js';

const PROMPT = 'a red circle bouncing on a dark green background';

test("a preset's cache with the user's cache keys on top; other keys as the base configuration says", () => {
  const plain = presetConfig('self-forcing-window', {}, PROMPT, 0);
  assert.is(plain.cache.policy, 'window');
  assert.is(plain.cache.sparse.stride, 1);
  const sparse = presetConfig('streamingllm-sink', { set: ['cache.sparse.stride=3', 'generation.fps=16'] }, PROMPT, 4);
  assert.equal([sparse.cache.policy, sparse.cache.window, sparse.cache.sparse.stride], ['sink', 12, 3]);
  assert.equal([sparse.generation.prompt, sparse.generation.seed], [PROMPT, 4]);
  // the preset's own keys still replace the base configuration's
  const window = presetConfig('self-forcing-window', { set: ['cache.window=15'] }, PROMPT, 0);
  assert.equal([window.cache.policy, window.cache.window], ['window', 15]);
});

test('a cache key no preset has: no preset is the targets\' default configuration', () => {
  assert.is(presetOfBaseCache({}), 'streamingllm-sink');
  assert.is(presetOfBaseCache({ set: ['cache.sparse.stride=3'] }), undefined);
});

test('a cache key a preset cannot take is refused, naming it', () => {
  assert.throws(() => presetConfig('reward-forcing-ema-sink', { set: ['cache.sparse.stride=3'] }, PROMPT, 0), /preset 'reward-forcing-ema-sink'.*cache\.sparse\.stride/s);
});

test.run();
