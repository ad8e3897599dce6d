/**
 * tools/bench/engine-video-diff.ts: two CPU configurations that render the same frames compare as
 * equal, a different seed for B compares as different (so the comparison can fail), a saved reference
 * compares like a live engine A, and bad arguments exit 2 naming the argument. The demo model, a few
 * blocks; in process through `main`, plus one run of the real script in a child process.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { frameDifference, main } from '../../tools/bench/engine-video-diff.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tool = path.join(root, 'tools/bench/engine-video-diff.ts');

interface Figures {
  maxAbs: number;
  meanAbs: number;
  psnrDb: number | null;
}
interface Report {
  blocks: (Figures & { index: number; steps: number })[];
  overall: Figures;
  generated: Figures | null;
  width: number;
  height: number;
  framesPerBlock: number;
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string; report: Report | null }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, (s) => (stdout += s), (s) => (stderr += s));
  const last = stdout.trim().split('\n').pop() ?? '';
  return { code, stdout, stderr, report: last.startsWith('{') ? (JSON.parse(last) as Report) : null };
}

// One ONNX Runtime thread each: the engines' own threads would only compete on a small machine.
const one = ['engine.threads=1'];
const blocks = ['--blocks', '3'];

test('figures: max and mean absolute difference, PSNR of 255² over the mean squared difference', () => {
  const d = frameDifference([Uint8Array.of(0, 10, 200)], [Uint8Array.of(255, 10, 190)]);
  assert.is(d.maxAbs, 255);
  assert.is(d.meanAbs, (255 + 0 + 10) / 3);
  assert.ok(Math.abs(d.psnrDb - 10 * Math.log10((255 * 255 * 3) / (255 * 255 + 100))) < 1e-12);
  assert.is(frameDifference([Uint8Array.of(1, 2)], [Uint8Array.of(1, 2)]).psnrDb, Infinity);
});

test('one engine vs a 2-stage pipeline: the same video (within 1 byte); another seed for B: a different one', async () => {
  const same = await run([...blocks, '--json', ...one.flatMap((s) => ['--a', s]), '--b', 'engine.stages=2', ...one.flatMap((s) => ['--b', s])]);
  assert.is(same.code, 0, same.stderr);
  const r = same.report!;
  assert.is(r.blocks.length, 3);
  assert.equal([r.width, r.height, r.framesPerBlock], [64, 64, 3]);
  assert.ok(r.generated !== null && r.blocks.filter((b) => b.steps > 0).length >= 2, 'the engine generated blocks');
  assert.ok(r.overall.maxAbs <= 1, `max ${r.overall.maxAbs}`);
  assert.match(same.stdout, /^all 3 blocks: max [01], /m);

  const other = await run([...blocks, '--json', ...one.flatMap((s) => ['--a', s]), ...one.flatMap((s) => ['--b', s]), '--b', 'generation.seed=1']);
  assert.is(other.code, 0, other.stderr);
  const g = other.report!.generated!;
  assert.ok(g.maxAbs > 1, `max ${g.maxAbs}: a different seed must show`);
  assert.ok(g.psnrDb !== null && Number.isFinite(g.psnrDb), 'a finite PSNR');
  assert.ok(g.meanAbs > 0);
});

test('--save then --against: the saved reference compares like engine A; another configuration is refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sinkstream-video-diff-'));
  const file = path.join(dir, 'reference.rgb24');
  try {
    const saved = await run([...blocks, '--seed', '4', '--set', ...one, '--save', file]);
    assert.is(saved.code, 0, saved.stderr);
    const header = JSON.parse(fs.readFileSync(file).subarray(0, fs.readFileSync(file).indexOf(0x0a)).toString());
    assert.equal([header.width, header.height, header.frames, header.blocks], [64, 64, 9, 3]);
    assert.is(header.config.generation.seed, 4);

    const against = await run(['--against', file, '--seed', '4', '--json', '--b', 'engine.stages=2', '--b', ...one]);
    assert.is(against.code, 0, against.stderr);
    assert.is(against.report!.blocks.length, 3, '--blocks defaults to the saved count');
    assert.ok(against.report!.overall.maxAbs <= 1);

    const otherSeed = await run(['--against', file, '--b', ...one]);
    assert.is(otherSeed.code, 2);
    assert.match(otherSeed.stderr, /generation\.seed: saved 4, here 0/);
    const tooMany = await run(['--against', file, '--seed', '4', '--blocks', '4']);
    assert.is(tooMany.code, 2);
    assert.match(tooMany.stderr, /--blocks 4/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad arguments: exit status 2, the message names the argument', async () => {
  for (const [args, named] of [
    [['--blocks', '0'], /--blocks 0/],
    [['--seed', 'x'], /--seed x/],
    [['--b', 'engine'], /--b engine: expected key=value/],
    [['--a', 'engine.name=cuda'], /engine A \(--a engine\.name=cuda\).*\n\s*--a engine\.name=cuda: engine\.name:/],
    [['--against', '/nonexistent/reference.rgb24'], /--against \/nonexistent\/reference\.rgb24: cannot read/],
    [['--against', 'x', '--a', 'engine.threads=1'], /--against .*cannot be used with option '--a/],
    [['--bogus'], /unknown option '--bogus'/],
  ] as const) {
    const r = await run([...args]);
    assert.is(r.code, 2, args.join(' '));
    assert.match(r.stderr, named, args.join(' '));
  }
});

test('the script itself: exit status and figures from a child process', () => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', tool, '--blocks', '2', '--json', '--set', ...one], { cwd: root, encoding: 'utf8' });
  assert.is(child.status, 0, child.stderr);
  const report = JSON.parse(child.stdout.trim().split('\n').pop()!) as Report;
  assert.is(report.overall.maxAbs, 0, 'the same configuration twice');
  const bad = spawnSync(process.execPath, ['--import', 'tsx', tool, '--blocks', '-1'], { cwd: root, encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--blocks/);
});

test.run();
