import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configSchema } from '../../src/config/schema.js';
import { modelDims } from '../../src/model/dims.js';
import { expectedShapes, TEXT_EMBEDDING_KEY } from '../../src/model/expected-shapes.js';
import { detectNaming, mapKeys, toDiffusersKey } from '../../src/model/key-names.js';

const dims = modelDims(configSchema.parse({ model: { arch: { dim: 8, layers: 2, heads: 2, ffnDim: 16, latentChannels: 12, textDim: 4 } } }));
const canonical = [...expectedShapes(dims).keys()];

function throwsWith(fn: () => unknown, fragment: string): void {
  try {
    fn();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_MODEL_SHAPE');
    assert.ok((e as Error).message.includes(fragment), (e as Error).message);
    return;
  }
  assert.unreachable('expected a throw');
}

test('diffusers names: the documented renames, and both directions are inverse', () => {
  const pairs: Array<[string, string]> = [
    ['blocks.0.self_attn.q.weight', 'blocks.0.attn1.to_q.weight'],
    ['blocks.0.self_attn.o.bias', 'blocks.0.attn1.to_out.0.bias'],
    ['blocks.1.self_attn.norm_k.weight', 'blocks.1.attn1.norm_k.weight'],
    ['blocks.1.cross_attn.v.weight', 'blocks.1.attn2.to_v.weight'],
    ['blocks.1.cross_attn.norm_q.weight', 'blocks.1.attn2.norm_q.weight'],
    ['blocks.0.norm3.weight', 'blocks.0.norm2.weight'],
    ['blocks.0.ffn.0.weight', 'blocks.0.ffn.net.0.proj.weight'],
    ['blocks.0.ffn.2.bias', 'blocks.0.ffn.net.2.bias'],
    ['blocks.1.modulation', 'blocks.1.scale_shift_table'],
    ['head.modulation', 'scale_shift_table'],
    ['head.head.weight', 'proj_out.weight'],
    ['time_embedding.0.weight', 'condition_embedder.time_embedder.linear_1.weight'],
    ['time_embedding.2.bias', 'condition_embedder.time_embedder.linear_2.bias'],
    ['time_projection.1.weight', 'condition_embedder.time_proj.weight'],
    ['text_embedding.0.bias', 'condition_embedder.text_embedder.linear_1.bias'],
    ['text_embedding.2.weight', 'condition_embedder.text_embedder.linear_2.weight'],
    ['patch_embedding.weight', 'patch_embedding.weight'],
  ];
  for (const [wan, diffusers] of pairs) assert.is(toDiffusersKey(wan), diffusers);
  const all = [...canonical, TEXT_EMBEDDING_KEY];
  const diffusersKeys = all.map(toDiffusersKey);
  assert.is(new Set(diffusersKeys).size, all.length, 'the renaming is one-to-one');
  const mapping = mapKeys(diffusersKeys);
  assert.is(mapping.naming, 'diffusers');
  assert.equal(diffusersKeys.map((k) => mapping.toCanonical.get(k)), all);
});

test('Wan names with wrappers: model., generator_ema preferred over generator, torch.compile prefix', () => {
  const wrapped = [...canonical.map((k) => `generator_ema.model.${k}`), ...canonical.map((k) => `generator.model.${k}`)];
  const mapping = mapKeys(wrapped);
  assert.is(mapping.naming, 'wan');
  assert.is(mapping.toCanonical.size, canonical.length);
  assert.is(mapping.toCanonical.get('generator_ema.model.blocks.1.ffn.2.weight'), 'blocks.1.ffn.2.weight');
  assert.is(mapping.ignored.length, canonical.length);
  assert.ok(mapping.ignored.every((k) => k.startsWith('generator.')));
  assert.is(mapKeys(['_orig_mod.model.head.head.weight']).toCanonical.get('_orig_mod.model.head.head.weight'), 'head.head.weight');
  assert.is(detectNaming(['model.blocks.0.self_attn.q.weight']), 'wan');
});

test('RoPE buffers are ignored; LoRA and image branches are refused with the reason; unknown keys are named', () => {
  assert.equal(mapKeys(['freqs', 'head.head.weight']).ignored, ['freqs']);
  throwsWith(() => mapKeys(['blocks.0.self_attn.q.lora_A.weight']), 'LoRA');
  throwsWith(() => mapKeys(['blocks.0.cross_attn.k_img.weight']), 'image');
  throwsWith(() => mapKeys(['blocks.0.self_attn.qq.weight']), "'blocks.0.self_attn.qq.weight'");
  throwsWith(() => mapKeys(['blocks.0.attn1.to_q.weight', 'blocks.0.self_attn.q.weight']), 'both map to');
});

test.run();
