/** The demo model's prompts: exactly the training captions pass; what it was never trained to draw is refused. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadSceneSpec, parsePrompt } from '../../src/scene/scene-spec.js';
import { loadConfig } from '../../src/config/load.js';
import { createPromptEncoder } from '../../src/text/prompt-encoder.js';
import { FIXED_PROMPTS } from '../../src/eval/prompt-sets.js';
import { SinkstreamError } from '../../src/errors.js';

const spec = loadSceneSpec();

/** A caption as tools/data/scenes.py `caption` writes it. */
function caption(objects: Array<[string, string]>, background: string): string {
  const named = objects.map(([c, s]) => `a ${c} ${s}`);
  const what = named.length === 1 ? named[0] : `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}`;
  return `${what} bouncing on a ${background} background`;
}

function refusal(prompt: string): string {
  try {
    parsePrompt(prompt, spec);
  } catch (e) {
    assert.instance(e, SinkstreamError);
    assert.is((e as SinkstreamError).code, 'ERR_PROMPT');
    return (e as Error).message;
  }
  throw new assert.Assertion({ message: `'${prompt}' was accepted`, operator: 'throws', actual: null, expects: null, generated: false });
}

test('every object colour, shape and background of training, one to three objects, is accepted', () => {
  const colours = [...spec.objects.keys()];
  for (const background of spec.backgrounds.keys()) {
    for (const shape of spec.shapes) {
      for (const colour of colours) {
        const one = parsePrompt(caption([[colour, shape]], background), spec);
        assert.equal(one.objects, [{ colour, shape }]);
        assert.is(one.background, background);
      }
      const three = parsePrompt(caption([[colours[0], shape], [colours[1], 'circle'], [colours[2], 'triangle']], background), spec);
      assert.is(three.objects.length, 3);
    }
  }
  assert.is(parsePrompt(caption([['red', 'circle'], ['blue', 'square']], 'dark green'), spec).objects.length, 2);
  assert.is(parsePrompt('A Yellow Triangle bouncing on a DARK BLUE background.', spec).background, 'dark blue', 'case and punctuation are not words');
});

test('the default prompt and the evaluation prompts are training captions', () => {
  parsePrompt(loadConfig().generation.prompt, spec);
  for (const p of FIXED_PROMPTS) parsePrompt(p, spec);
});

test('what was never trained is refused, naming the first difference and what the model can draw', () => {
  const cases: Array<[string, RegExp]> = [
    ['a purple circle on a black background', /'purple' is not an object colour/],
    ['a gray square on a dark blue background', /'gray' is not an object colour/],
    ['a red circle bouncing on a blue background', /'blue' is not a background/],
    ['a red circle bouncing on a dark background', /'dark' is not a background/],
    ['a red circle', /ends where 'bouncing'/],
    ['a red circle on a black background', /'on' where 'bouncing'/],
    ['a red circle and a red square bouncing on a black background', /two objects are red/],
    ['a red circle a blue square bouncing on a black background', /joins its 2 objects/],
    ['a red circle and a blue square and a green circle bouncing on a black background', /joins its 3 objects/],
    ['a red circle, a blue square, a green triangle and a white circle bouncing on a black background', /names 4 objects/],
    ['a red circle bouncing on a black background and a blue square', /does not end in/],
    ['bouncing on a black background', /'bouncing' where 'a'/],
  ];
  for (const [prompt, why] of cases) {
    const message = refusal(prompt);
    assert.match(message, why, prompt);
    assert.match(message, /red, green, blue, yellow, magenta, cyan, white/, 'the object colours');
    assert.match(message, /circle, square, triangle/, 'the shapes');
    assert.match(message, /dark green, dark blue, dark gray, dark purple, black/, 'the backgrounds');
  }
});

test('the prompt encoder of a model with a scene spec refuses them; without one (not the demo model) it encodes them as before', async () => {
  const config = loadConfig({ set: ['model.weights=synthetic'] });
  const demo = await createPromptEncoder(config, new Map());
  assert.throws(() => demo.encode('a purple circle on a black background'), /'purple' is not an object colour/);
  assert.throws(() => demo.encode('a zebra'), /'zebra' is not in the vocabulary/, 'an unknown word is still named with the vocabulary');
  assert.is((demo.encode(config.generation.prompt) as Float32Array).length, demo.textLen * demo.textDim);
  const plain = await createPromptEncoder({ ...config, model: { ...config.model, scene: undefined } }, new Map());
  assert.is((plain.encode('a purple circle on a black background') as Float32Array).length, plain.textLen * plain.textDim);
});

test.run();
