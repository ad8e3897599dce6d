import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint, TorchCheckpoint } from '../../src/model/torch-checkpoint.js';
import { readSafetensors, SafetensorsFile } from '../../src/model/safetensors.js';
import { rejectsWith } from '../helpers/assertions.js';

// Fixtures written by tools/fixtures/torch_checkpoints.py (PyTorch 1.13's torch.save).
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixture = (name: string): string => path.join(fixtures, name);
const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-torch-'));

/** Every tensor of `expected` (canonical names) equals the checkpoint's `prefix + name`, bit for bit. */
async function assertHolds(file: string, prefix: (key: string) => string, expectedFile: string): Promise<void> {
  const expected = await readSafetensors(fixture(expectedFile));
  const ckpt = await TorchCheckpoint.open(fixture(file));
  try {
    for (const [key, want] of expected) {
      const got = await ckpt.read(prefix(key));
      assert.equal(got.shape, want.shape, key);
      assert.ok(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(want.data.buffer)), `values of ${key}`);
    }
  } finally {
    await ckpt.close();
  }
}

test("Self-Forcing's {'generator', 'generator_ema'}: flattened dotted keys, float32 values", async () => {
  const ckpt = await TorchCheckpoint.open(fixture('self-forcing.pt'));
  assert.equal(ckpt.entries.get('generator_ema.model.blocks.1.self_attn.q.weight'), {
    dtype: 'F32', shape: [6, 6], record: ckpt.entries.get('generator_ema.model.blocks.1.self_attn.q.weight')!.record, offset: 0, stride: [6, 1],
  });
  assert.ok(ckpt.keys().some((k) => k.startsWith('generator.model.')));
  assert.is(ckpt.keys().filter((k) => k.startsWith('generator_ema.')).length, ckpt.keys().filter((k) => k.startsWith('generator.')).length);
  await ckpt.close();
  await assertHolds('self-forcing.pt', (k) => `generator_ema.model.${k}`, 'self-forcing-ema.safetensors');
  await assertHolds('self-forcing.pt', (k) => `generator.model.${k}`, 'self-forcing-generator.safetensors');
});

test('bfloat16 views: storage offsets, transposed strides and stride 0 read as the views hold', async () => {
  const ckpt = await TorchCheckpoint.open(fixture('trainer-bf16.pt'));
  const q = ckpt.entries.get('generator.model._orig_mod.blocks.0._checkpoint_wrapped_module.self_attn.q.weight')!;
  const k = ckpt.entries.get('generator.model._orig_mod.blocks.0._checkpoint_wrapped_module.self_attn.k.weight')!;
  const ffn = ckpt.entries.get('generator.model._orig_mod.blocks.0._checkpoint_wrapped_module.ffn.0.weight')!;
  const norm = ckpt.entries.get('generator.model._orig_mod.blocks.0._checkpoint_wrapped_module.norm3.weight')!;
  assert.is(q.dtype, 'BF16');
  assert.is(q.record, k.record, 'q and k share one storage');
  assert.is(k.offset, 36);
  assert.equal(ffn.stride, [1, 12]);
  assert.equal(norm.stride, [0]);
  // Non-tensor entries ('step', 'config') are skipped; the critic's tensors are listed too.
  assert.not.ok(ckpt.keys().some((key) => key.startsWith('step') || key.startsWith('config')));
  assert.ok(ckpt.keys().some((key) => key.startsWith('critic.model.blocks.0.')));
  await ckpt.close();
  const wrapped = (key: string): string => `generator.model._orig_mod.${key.replace(/^blocks\.(\d+)\./, 'blocks.$1._checkpoint_wrapped_module.')}`;
  await assertHolds('trainer-bf16.pt', wrapped, 'trainer-bf16.safetensors');
});

test('float16 bare state dict, and the same archive in ZIP64 form', async () => {
  await assertHolds('raw-f16.pt', (k) => k, 'raw-f16.safetensors');
  await assertHolds('raw-f16-zip64.pt', (k) => k, 'raw-f16.safetensors');
});

test('openCheckpoint: a torch zip or a safetensors file by content, whatever the extension', async () => {
  const pt = path.join(dir, 'weights.safetensors');
  writeFileSync(pt, readFileSync(fixture('raw-f16.pt')));
  const a = await openCheckpoint(pt);
  assert.ok(a instanceof TorchCheckpoint);
  assert.is(a.entries.get('blocks.0.ffn.0.weight')!.dtype, 'F16');
  await a.close();
  const st = path.join(dir, 'weights.pt');
  writeFileSync(st, readFileSync(fixture('raw-f16.safetensors')));
  const b = await openCheckpoint(st);
  assert.ok(b instanceof SafetensorsFile);
  assert.equal(b.entries.get('blocks.0.ffn.0.weight')!.shape, [12, 6]);
  await b.close();
});

test('not a checkpoint, a legacy torch file, a missing file: ERR_MODEL_FILE naming the file', async () => {
  const text = path.join(dir, 'notes.pt');
  writeFileSync(text, 'just some text, not weights\n');
  await rejectsWith(openCheckpoint(text), 'ERR_MODEL_FILE', text, 'not a checkpoint', 'torch.save');
  await rejectsWith(TorchCheckpoint.open(text), 'ERR_MODEL_FILE', text, 'not a PyTorch zip checkpoint');
  const legacy = path.join(dir, 'legacy.pt');
  writeFileSync(legacy, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80]));
  await rejectsWith(openCheckpoint(legacy), 'ERR_MODEL_FILE', legacy, 'legacy');
  await rejectsWith(openCheckpoint(path.join(dir, 'absent.pt')), 'ERR_MODEL_FILE', 'absent.pt', 'ENOENT');
});

test('a truncated checkpoint: ERR_MODEL_FILE saying so', async () => {
  const whole = readFileSync(fixture('self-forcing.pt'));
  for (const keep of [Math.floor(whole.length / 2), whole.length - 30]) {
    const cut = path.join(dir, `cut-${keep}.pt`);
    writeFileSync(cut, whole.subarray(0, keep));
    await rejectsWith(openCheckpoint(cut), 'ERR_MODEL_FILE', cut, 'truncated');
  }
});

/** A copy of a fixture with the stored data.pkl patched (stored records: bytes sit as-is in the file). */
function patchPickle(name: string, patch: (pkl: Buffer) => void): string {
  const buf = Buffer.from(readFileSync(fixture(name)));
  const nameAt = buf.indexOf('/data.pkl');
  const header = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x03, 0x04]), nameAt);
  const start = header + 30 + buf.readUInt16LE(header + 26) + buf.readUInt16LE(header + 28);
  patch(buf.subarray(start)); // torch's local headers carry no sizes (a data descriptor follows)
  const out = path.join(dir, `patched-${Math.random().toString(36).slice(2)}.pt`);
  writeFileSync(out, buf);
  return out;
}

test('an unsupported pickle opcode or tensor kind: ERR_MODEL_FILE naming it', async () => {
  const opcode = patchPickle('raw-f16.pt', (pkl) => { pkl[2] = 0xfe; });
  await rejectsWith(TorchCheckpoint.open(opcode), 'ERR_MODEL_FILE', opcode, 'data.pkl', 'unsupported pickle opcode 0xfe');
  const global = patchPickle('raw-f16.pt', (pkl) => {
    const at = pkl.indexOf('_rebuild_tensor_v2');
    pkl.write('_rebuild_qtensor_x', at, 'latin1');
  });
  await rejectsWith(TorchCheckpoint.open(global), 'ERR_MODEL_FILE', global, 'unsupported global torch._utils._rebuild_qtensor_x');
});

test('read: unknown key and read after close', async () => {
  const ckpt = await TorchCheckpoint.open(fixture('raw-f16.pt'));
  await rejectsWith(ckpt.read('blocks.9.ffn.0.weight'), 'ERR_MODEL_FILE', "no tensor 'blocks.9.ffn.0.weight'");
  await ckpt.close();
  await rejectsWith(ckpt.read('blocks.0.ffn.0.weight'), 'ERR_CLOSED');
});

test.run();
