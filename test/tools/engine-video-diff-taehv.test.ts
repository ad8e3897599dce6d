/**
 * tools/bench/engine-video-diff.ts with a streaming decoder whose first block gives fewer frames
 * (TAEHV: 9, then 12): the saved file records each block's frame count and reads back block by block.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main, readSaved } from '../../tools/bench/engine-video-diff.js';

const SMALL = [
  'model.arch.latentChannels=16',
  'model.latentHeight=4',
  'model.latentWidth=4',
  'model.weights=synthetic',
  'generation.opening=noise',
  'engine.threads=1',
  'decoder.kind=taehv',
  'decoder.taehv.channels=[8,8,4,4]',
].flatMap((s) => ['--set', s]);

test('--save / --against through TAEHV: blocks of 9 and 12 frames, compared as equal', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sinkstream-video-diff-taehv-'));
  const file = path.join(dir, 'reference.rgb24');
  let stdout = '';
  let stderr = '';
  const out = (s: string) => (stdout += s);
  const err = (s: string) => (stderr += s);
  try {
    assert.is(await main(['--blocks', '2', ...SMALL, '--save', file], out, err), 0, stderr);
    const { header, clip } = readSaved(file);
    assert.equal([header.frames, header.framesPerBlock, header.blockFrames], [21, 12, [9, 12]]);
    assert.equal(clip.blocks.map((b) => b.frames.length), [9, 12]);
    assert.is(clip.blocks[1].frames[0].length, 32 * 32 * 3);
    stdout = '';
    assert.is(await main(['--against', file, ...SMALL, '--json'], out, err), 0, stderr);
    const report = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.is(report.overall.maxAbs, 0);
    assert.match(stdout, /2 blocks, 21 frames of 32x32/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
