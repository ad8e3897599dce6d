import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GraphBuilder } from '../../src/onnx/graph-builder.js';
import { OnnxDecoder } from '../../src/decode/onnx-decoder.js';
import { encodeSpaceToDepth } from '../../src/decode/space-to-depth.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-onnx-decoder-'));

/** latent [1, 3b^2, F, H, W] -> frames [1, 3, F, Hb, Wb] with DepthToSpace (DCR = our channel layout). */
function depthToSpaceGraph(factor: number, h: number, w: number): string {
  const g = new GraphBuilder('s2d-decoder');
  const C = 3 * factor * factor;
  const x = g.input('latent', 'float32', [1, C, 'F', h, w]);
  const squeezed = g.op('Squeeze', [x, g.int64s([0], 'squeeze_axes')]); // [C, F, H, W]
  const fchw = g.op('Transpose', [squeezed], { perm: [1, 0, 2, 3] }); // [F, C, H, W]
  const pixels = g.op('DepthToSpace', [fchw], { blocksize: factor, mode: 'DCR' }); // [F, 3, Hb, Wb]
  const cfhw = g.op('Transpose', [pixels], { perm: [1, 0, 2, 3] }); // [3, F, Hb, Wb]
  const out = g.op('Unsqueeze', [cfhw, g.int64s([0], 'unsqueeze_axes')]);
  g.output(out, 'float32', [1, 3, 'F', h * factor, w * factor], 'frames');
  const file = path.join(dir, `s2d-${factor}.onnx`);
  writeFileSync(file, g.serialize());
  return file;
}

test('an ONNX DepthToSpace graph decodes exactly like space-to-depth', async () => {
  const factor = 2;
  const [h, w] = [3, 5];
  const decoder = await OnnxDecoder.open(depthToSpaceGraph(factor, h, w), 3 * factor * factor, h, w);
  try {
    assert.is(decoder.width, w * factor);
    assert.is(decoder.height, h * factor);
    assert.is(decoder.framesPerLatentFrame, 1);
    const frames = Array.from({ length: 3 }, (_, f) => Uint8Array.from({ length: w * factor * h * factor * 3 }, (_, i) => (i * 7 + f * 31) % 256));
    const decoded = await decoder.decode(encodeSpaceToDepth(frames, w * factor, h * factor, factor));
    assert.is(decoded.length, 3);
    for (let f = 0; f < 3; f++) assert.ok(Buffer.from(decoded[f]).equals(Buffer.from(frames[f])), `frame ${f}`);
  } finally {
    await decoder.close();
    await decoder.close();
  }
});

test('a graph with the wrong latent size is refused at open, naming the file', async () => {
  const file = depthToSpaceGraph(1, 4, 4);
  try {
    await OnnxDecoder.open(file, 3, 5, 5);
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_MODEL_FILE');
    assert.ok((e as Error).message.includes(file));
  }
});

test.run();
