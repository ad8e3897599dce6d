/** The evaluation's prompt sets: held-out captions (crc32 % 8 == 0) drawn from the training grammar. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { caption, FIXED_PROMPTS, heldOutPrompts, isHeldOut } from '../../src/eval/prompt-sets.js';
import { promptsOf } from '../../src/eval/run-eval.js';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';
import { SinkstreamError } from '../../src/errors.js';

const spec = loadSceneSpec();

test('held-out rule: crc32 of the caption, as Python zlib.crc32 computes it', () => {
  // values from Python: zlib.crc32(caption.encode()) -> 3153234632 (% 8 == 0), 1852410398 (% 8 == 6)
  assert.ok(isHeldOut('a cyan circle bouncing on a dark green background'));
  assert.not.ok(isHeldOut('a red circle and a blue square bouncing on a dark green background'));
  assert.is(caption([{ colour: 'white', shape: 'square' }, { colour: 'magenta', shape: 'circle' }, { colour: 'cyan', shape: 'triangle' }], 'black'), FIXED_PROMPTS[2]);
});

test('held-out prompts: deterministic, distinct, 1, 2 and 3 objects in turn, all held out and in the grammar', () => {
  const a = heldOutPrompts(spec, 12);
  assert.equal(heldOutPrompts(spec, 12), a);
  assert.equal(heldOutPrompts(spec, 4), a.slice(0, 4), 'a longer draw starts with the shorter one');
  assert.is(new Set(a).size, 12);
  a.forEach((p, i) => {
    assert.ok(isHeldOut(p), p);
    const scene = parsePrompt(p, spec);
    assert.is(scene.objects.length, (i % 3) + 1, p);
    assert.is(caption(scene.objects, scene.background), p, 'written exactly as training writes captions');
  });
  assert.ok(new Set(a.map((p) => parsePrompt(p, spec).background)).size > 1, 'more than one background');
});

test('the fixed set is still available and is the committed run\'s three prompts', () => {
  assert.equal(promptsOf('fixed', 3, spec), FIXED_PROMPTS);
  assert.equal(promptsOf('held-out', 3, spec), heldOutPrompts(spec, 3));
  for (const p of FIXED_PROMPTS) assert.not.ok(isHeldOut(p), `${p} was trained on`);
});

test('asking for more held-out one-object captions than the grammar has is bad input', () => {
  const oneObject = [...spec.objects.keys()].length * spec.shapes.length * [...spec.backgrounds.keys()].length;
  try {
    heldOutPrompts(spec, 3 * oneObject);
    assert.unreachable('drew more captions than exist');
  } catch (e) {
    assert.instance(e, SinkstreamError);
    assert.is((e as SinkstreamError).code, 'ERR_ARGUMENT');
  }
});

test.run();
