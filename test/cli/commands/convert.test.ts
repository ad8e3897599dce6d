/**
 * `sinkstream convert` and the wrong-file errors of render (exit 2, the file / key named, nothing
 * written), through the CLI's main() in this process. Fixtures: tools/fixtures/torch_checkpoints.py.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../../src/cli/main.js';
import { configSchema } from '../../../src/config/schema.js';
import { loadWeights } from '../../../src/model/load-weights.js';
import { readSafetensors, SafetensorsFile, writeSafetensors } from '../../../src/model/safetensors.js';
import { assertSameWeights } from '../../helpers/assertions.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../model/fixtures');
const fixture = (name: string): string => path.join(fixtures, name);
const arch = { dim: 6, layers: 2, heads: 1, ffnDim: 12, freqDim: 4, latentChannels: 12, textDim: 4, textLen: 4 };
const tinySet = [
  'model.arch.dim=6', 'model.arch.heads=1', 'model.arch.layers=2', 'model.arch.ffnDim=12', 'model.arch.freqDim=4',
  'model.arch.latentChannels=12', 'model.arch.textDim=4', 'model.arch.textLen=8', 'model.latentHeight=4', 'model.latentWidth=4',
  'decoder.factor=2', 'generation.opening=noise', 'generation.prompt=a red circle bouncing on a black background', 'engine.threads=1',
].flatMap((s) => ['--set', s]);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
}

const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'sinkstream-convert-'));

test('convert: a Self-Forcing .pt becomes canonical safetensors of its generator_ema', async () => {
  const out = path.join(tmp(), 'sf.safetensors');
  const run = await cli(['convert', fixture('self-forcing.pt'), out]);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /entry 'generator_ema'/);
  assertSameWeights(await readSafetensors(out), await readSafetensors(fixture('self-forcing-ema.safetensors')));
  const file = await SafetensorsFile.open(out);
  assert.ok(file.keys().includes('blocks.0.self_attn.q.weight'));
  assert.is(file.metadata['sinkstream.entry'], 'generator_ema');
  await file.close();
});

test('convert --dtype bf16 of a bf16 trainer checkpoint keeps its values exactly', async () => {
  const out = path.join(tmp(), 'trainer.safetensors');
  const run = await cli(['convert', fixture('trainer-bf16.pt'), out, '--dtype', 'bf16']);
  assert.is(run.code, 0, run.stderr);
  const file = await SafetensorsFile.open(out);
  assert.is(file.entries.get('blocks.0.ffn.0.weight')!.dtype, 'BF16');
  await file.close();
  assertSameWeights(await readSafetensors(out), await readSafetensors(fixture('trainer-bf16.safetensors')));
});

test('convert --lora equals the LoRA applied at load, and the reference merge', async () => {
  const out = path.join(tmp(), 'merged.safetensors');
  const run = await cli(['convert', fixture('self-forcing.pt'), out, '--lora', fixture('longlive-lora.pt')]);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /LoRA merged into 20 weights/);
  const atLoad = await loadWeights(configSchema.parse({ model: { arch, latentHeight: 4, latentWidth: 4, weights: fixture('self-forcing.pt'), lora: fixture('longlive-lora.pt') } }));
  assertSameWeights(await readSafetensors(out), atLoad);
  assertSameWeights(await readSafetensors(out), await readSafetensors(fixture('longlive-merged.safetensors')), { tolerance: 1e-6 });
  const scaled = path.join(tmp(), 'scaled.safetensors');
  assert.is((await cli(['convert', fixture('self-forcing.pt'), scaled, '--lora', fixture('peft-lora'), '--lora-scale', '1'])).code, 0);
  assertSameWeights(await readSafetensors(scaled), await readSafetensors(fixture('peft-merged.safetensors')), { tolerance: 1e-6 });
});

/** Exit 2 with every fragment in stderr, and no file left in `dir`. */
async function refused(args: string[], dir: string, ...fragments: string[]): Promise<void> {
  const run = await cli(args);
  assert.is(run.code, 2, `exit ${run.code}: ${run.stderr}`);
  for (const f of fragments) assert.ok(run.stderr.includes(f), `stderr lacks '${f}': ${run.stderr}`);
  assert.equal(readdirSync(dir), [], 'nothing written');
}

test('convert refuses wrong files with exit 2 naming the file or key, writing nothing', async () => {
  const inputs = tmp();
  const notCheckpoint = path.join(inputs, 'readme.pt');
  writeFileSync(notCheckpoint, 'not weights at all\n');
  const truncated = path.join(inputs, 'cut.pt');
  writeFileSync(truncated, readFileSync(fixture('self-forcing.pt')).subarray(0, 30000));
  const badLora = path.join(inputs, 'bad-lora.safetensors');
  await writeSafetensors(badLora, new Map([
    ['base_model.model.blocks.1.ffn.2.lora_A.weight', { shape: [2, 9], data: new Float32Array(18) }],
    ['base_model.model.blocks.1.ffn.2.lora_B.weight', { shape: [6, 2], data: new Float32Array(12) }],
  ]));
  const out = tmp();
  const target = path.join(out, 'x.safetensors');
  await refused(['convert', notCheckpoint, target], out, notCheckpoint, 'not a checkpoint', '[ERR_MODEL_FILE]');
  await refused(['convert', truncated, target], out, truncated, 'truncated');
  await refused(['convert', fixture('other-arch.pt'), target], out, 'other-arch.pt', "unknown key 'encoder.0.weight' of shape [8, 3, 3, 3]", '[ERR_MODEL_SHAPE]');
  await refused(['convert', fixture('self-forcing.pt'), target, '--lora', badLora], out, badLora, "'base_model.model.blocks.1.ffn.2.lora_A.weight'", 'A has shape [2, 9]');
  await refused(['convert', fixture('self-forcing.pt'), target, '--dtype', 'int8'], out, '--dtype');
  await refused(['convert', fixture('self-forcing.pt'), target, '--generator-key', 'nope'], out, "no entry 'nope'");
});

test('render refuses a wrong weights file or LoRA with exit 2 naming it, writing no video', async () => {
  const out = tmp();
  const video = path.join(out, 'never.mp4');
  const cut = path.join(tmp(), 'cut.pt');
  writeFileSync(cut, readFileSync(fixture('raw-f16.pt')).subarray(0, 5000));
  const render = (...set: string[]) => ['render', '--frames', '3', '--no-progress', '--out', video, ...tinySet, ...set.flatMap((s) => ['--set', s])];
  await refused(render(`model.weights=${fixture('other-arch.pt')}`), out, "unknown key 'encoder.0.weight' of shape [8, 3, 3, 3]");
  await refused(render(`model.weights=${cut}`), out, cut, 'truncated');
  await refused(render(`model.weights=${fixture('self-forcing.pt')}`, 'model.arch.layers=3'), out, "missing key 'blocks.2.");
  await refused(render(`model.weights=${fixture('self-forcing.pt')}`, `model.lora=${fixture('other-arch.pt')}`), out, 'other-arch.pt', 'is not a LoRA weight');
  assert.not.ok(existsSync(video));
});

test.run();
