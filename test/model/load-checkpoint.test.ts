/** Loading PyTorch checkpoints and LoRAs (fixtures: tools/fixtures/torch_checkpoints.py). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';
import { loadWeights } from '../../src/model/load-weights.js';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.js';
import { createGenerator } from '../../src/loop/generator.js';
import type { ModelWeights, WeightTensor } from '../../src/model/weights.js';
import { assertSameWeights, rejectsWith } from '../helpers/assertions.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixture = (name: string): string => path.join(fixtures, name);
const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-ckpt-'));

/** The fixtures' shape (FIXTURE_DIMS of the fixture script). */
const arch = { dim: 6, layers: 2, heads: 1, ffnDim: 12, freqDim: 4, latentChannels: 12, textDim: 4, textLen: 4 };
const modelConfig = (weights: string, extra: Record<string, unknown> = {}) =>
  configSchema.parse({ model: { arch, latentHeight: 4, latentWidth: 4, weights, ...extra } });

test("Self-Forcing's .pt loads its generator_ema, as its inference does; model.generatorKey picks another", async () => {
  assertSameWeights(await loadWeights(modelConfig(fixture('self-forcing.pt'))), await readSafetensors(fixture('self-forcing-ema.safetensors')));
  assertSameWeights(
    await loadWeights(modelConfig(fixture('self-forcing.pt'), { generatorKey: 'generator' })),
    await readSafetensors(fixture('self-forcing-generator.safetensors')),
  );
});

test('a bf16 trainer checkpoint: _orig_mod / _checkpoint_wrapped_module stripped, critic and step ignored, views read', async () => {
  assertSameWeights(await loadWeights(modelConfig(fixture('trainer-bf16.pt'))), await readSafetensors(fixture('trainer-bf16.safetensors')));
});

test('a bare float16 state dict', async () => {
  assertSameWeights(await loadWeights(modelConfig(fixture('raw-f16.pt'))), await readSafetensors(fixture('raw-f16.safetensors')));
});

test('model.generatorKey naming no entry: ERR_MODEL_FILE listing the entries', async () => {
  await rejectsWith(loadWeights(modelConfig(fixture('trainer-bf16.pt'), { generatorKey: 'ema' })), 'ERR_MODEL_FILE', "no entry 'ema'", "'generator'", "'critic'");
});

test('a checkpoint of another architecture: ERR_MODEL_SHAPE naming the first unexpected key and its shape', async () => {
  await rejectsWith(loadWeights(modelConfig(fixture('other-arch.pt'))), 'ERR_MODEL_SHAPE', 'other-arch.pt', "unknown key 'encoder.0.weight' of shape [8, 3, 3, 3]");
  // A Wan transformer of another size: the first key whose shape differs.
  const wider = configSchema.parse({ model: { arch: { ...arch, dim: 12 }, latentHeight: 4, latentWidth: 4, weights: fixture('self-forcing.pt') } });
  await rejectsWith(loadWeights(wider), 'ERR_MODEL_SHAPE', "entry 'generator_ema'", "key 'generator_ema.model.patch_embedding.weight'", 'has shape [6, 12, 1, 2, 2], expected [12, 12, 1, 2, 2]');
});

test("LongLive's lora.pt (generator_lora, alpha = rank) applied at load equals the merged weights", async () => {
  assertSameWeights(
    await loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: fixture('longlive-lora.pt') })),
    await readSafetensors(fixture('longlive-merged.safetensors')),
    { tolerance: 1e-6 },
  );
});

test('a PEFT adapter directory (adapter_config.json: rank 2, alpha 6) and its adapter_model file alone', async () => {
  const merged = await readSafetensors(fixture('peft-merged.safetensors'));
  assertSameWeights(await loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: fixture('peft-lora') })), merged, { tolerance: 1e-6 });
  assertSameWeights(await loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: fixture('peft-lora/adapter_model.safetensors') })), merged, { tolerance: 1e-6 });
});

test('model.loraScale scales the update; model.loraAlpha is the alpha when the file gives none', async () => {
  const base = await readSafetensors(fixture('self-forcing-ema.safetensors'));
  const merged = await readSafetensors(fixture('longlive-merged.safetensors'));
  const half = await loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: fixture('longlive-lora.pt'), loraScale: 0.5 }));
  const alpha2 = await loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: fixture('longlive-lora.pt'), loraAlpha: 2 })); // rank 4: scale 1/2
  const expected: ModelWeights = new Map();
  for (const [k, t] of base) {
    const m = merged.get(k)!;
    expected.set(k, { shape: t.shape, data: t.data.map((v, i) => v + 0.5 * (m.data[i] - v)) });
  }
  assertSameWeights(half, expected, { tolerance: 1e-6 });
  assertSameWeights(alpha2, expected, { tolerance: 1e-6 });
});

async function peftFile(name: string, tensors: Array<[string, WeightTensor]>): Promise<string> {
  const file = path.join(dir, name);
  await writeSafetensors(file, new Map(tensors));
  return file;
}
const zeros = (...shape: number[]): WeightTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

test('a LoRA whose base does not match: ERR_MODEL_SHAPE naming the key', async () => {
  const wrongIn = await peftFile('wrong-in.safetensors', [
    ['base_model.model.blocks.0.self_attn.q.lora_A.weight', zeros(2, 7)],
    ['base_model.model.blocks.0.self_attn.q.lora_B.weight', zeros(6, 2)],
  ]);
  await rejectsWith(
    loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: wrongIn })),
    'ERR_MODEL_SHAPE', wrongIn, "'base_model.model.blocks.0.self_attn.q.lora_A.weight'", 'A has shape [2, 7]', '[6, 6]',
  );
  const extraLayer = await peftFile('extra-layer.safetensors', [
    ['base_model.model.blocks.5.ffn.0.lora_A.weight', zeros(2, 6)],
    ['base_model.model.blocks.5.ffn.0.lora_B.weight', zeros(12, 2)],
  ]);
  await rejectsWith(loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: extraLayer })), 'ERR_MODEL_SHAPE', "'base_model.model.blocks.5.ffn.0.lora_A.weight'", "no 'blocks.5.ffn.0.weight'");
  const otherModel = await peftFile('other-model.safetensors', [
    ['base_model.model.encoder.layers.0.fc1.lora_A.weight', zeros(2, 6)],
    ['base_model.model.encoder.layers.0.fc1.lora_B.weight', zeros(6, 2)],
  ]);
  await rejectsWith(loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: otherModel })), 'ERR_MODEL_SHAPE', "'base_model.model.encoder.layers.0.fc1.lora_A.weight'", 'not a linear weight of the Wan transformer');
  const unpaired = await peftFile('unpaired.safetensors', [['base_model.model.blocks.0.self_attn.q.lora_A.weight', zeros(2, 6)]]);
  await rejectsWith(loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: unpaired })), 'ERR_MODEL_FILE', 'no lora_B');
});

test('a LoRA in ComfyUI naming with stored alphas (lora_down / lora_up / alpha) scales by alpha / rank', async () => {
  const down = { shape: [2, 6], data: Float32Array.from({ length: 12 }, (_, i) => (i % 5) * 0.1 - 0.2) };
  const up = { shape: [6, 2], data: Float32Array.from({ length: 12 }, (_, i) => (i % 3) * 0.1 - 0.1) };
  const file = await peftFile('comfy.safetensors', [
    ['diffusion_model.blocks.1.cross_attn.k.lora_down.weight', down],
    ['diffusion_model.blocks.1.cross_attn.k.lora_up.weight', up],
    ['diffusion_model.blocks.1.cross_attn.k.alpha', { shape: [], data: Float32Array.of(1) }],
  ]);
  const base = await readSafetensors(fixture('self-forcing-ema.safetensors'));
  const got = await loadWeights(modelConfig(fixture('self-forcing.pt'), { lora: file }));
  const w = base.get('blocks.1.cross_attn.k.weight')!;
  const expected = w.data.map((v, idx) => {
    const [i, j] = [Math.floor(idx / 6), idx % 6];
    return v + 0.5 * (up.data[i * 2] * down.data[j] + up.data[i * 2 + 1] * down.data[6 + j]);
  });
  assertSameWeights(new Map([['k', got.get('blocks.1.cross_attn.k.weight')!]]), new Map([['k', { shape: w.shape, data: expected }]]), { tolerance: 1e-6 });
  assertSameWeights(new Map([['q', got.get('blocks.1.cross_attn.q.weight')!]]), new Map([['q', base.get('blocks.1.cross_attn.q.weight')!]]));
});

test('the generator renders the same frames from the .pt as from the same weights in safetensors', async () => {
  const render = async (weights: string): Promise<Uint8Array[]> => {
    const config = loadConfig({
      set: [
        `model.weights=${weights}`, 'model.arch.dim=6', 'model.arch.heads=1', 'model.arch.layers=2', 'model.arch.ffnDim=12',
        'model.arch.freqDim=4', 'model.arch.latentChannels=12', 'model.arch.textDim=4', 'model.arch.textLen=8',
        'model.latentHeight=4', 'model.latentWidth=4', 'decoder.factor=2', 'generation.opening=noise', 'generation.prompt=a red circle bouncing on a black background', 'engine.threads=1',
      ],
    });
    const g = await createGenerator(config);
    try {
      return [...(await g.next()).frames, ...(await g.next()).frames];
    } finally {
      await g.close();
    }
  };
  const fromPt = await render(fixture('self-forcing.pt'));
  const fromSafetensors = await render(fixture('self-forcing-ema.safetensors'));
  const fromOther = await render(fixture('self-forcing-generator.safetensors'));
  assert.ok(fromPt.length > 0);
  assert.ok(fromPt.every((f, i) => Buffer.from(f).equals(Buffer.from(fromSafetensors[i]))), 'same frames');
  assert.not.ok(fromPt.every((f, i) => Buffer.from(f).equals(Buffer.from(fromOther[i]))), 'other weights, other frames');
});

test.run();
