/**
 * tools/bench/engine-video-diff.ts, the latent side: the relative L2 error of the block latents per
 * block and its summary; sparse attention against dense on the demo model (identical until the first
 * far frames are packed, different after), the same configuration twice (zero everywhere), and
 * `decoder.kind: none` (latents only). In process through `main`, a few blocks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main, relativeL2, summarizeLatentError, LATENT_LAST_BLOCKS } from '../../tools/bench/engine-video-diff.js';

interface Report {
  blocks: { index: number; steps: number; psnrDb: number | null; maxAbs: number | null; latentRelL2: number | null }[];
  overall: { psnrDb: number | null } | null;
  latent: { meanLast: number; lastBlocks: number; meanGenerated: number; generatedBlocks: number; max: number } | null;
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string; report: Report }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['--json', '--set', 'engine.threads=1', ...args], (s) => (stdout += s), (s) => (stderr += s));
  const last = stdout.trim().split('\n').pop() ?? '';
  return { code, stdout, stderr, report: JSON.parse(last) as Report };
}

test('relative L2 and its summary: the last 20 blocks, the generated ones, the largest', () => {
  assert.is(relativeL2(Float32Array.of(3, 4), Float32Array.of(3, 4)), 0);
  assert.ok(Math.abs(relativeL2(Float32Array.of(3, 4), Float32Array.of(0, 4)) - 3 / 5) < 1e-12);
  assert.is(relativeL2(Float32Array.of(0, 0), Float32Array.of(0, 0)), 0);
  const errors = Array.from({ length: 25 }, (_, i) => i);
  const s = summarizeLatentError(errors, errors.map((_, i) => i > 0));
  assert.is(LATENT_LAST_BLOCKS, 20);
  assert.equal(s, { meanLast: (5 + 24) / 2, lastBlocks: 20, meanGenerated: 12.5, generatedBlocks: 24, max: 24 });
});

test('sparse (stride 3) against dense on the demo model: the same latents until far frames are packed, then an error', async () => {
  const { code, stderr, report } = await run(['--blocks', '5', '--b', 'cache.sparse.stride=3']);
  assert.is(code, 0, stderr);
  const errors = report.blocks.map((b) => b.latentRelL2!);
  // the default cache (W 12, S 3, block 3) packs its first far frames (3..5) at block 3
  assert.equal(errors.slice(0, 3), [0, 0, 0]);
  assert.ok(errors[3] > 0 && errors[4] > 0, `errors ${errors}`);
  assert.ok(report.blocks[4].psnrDb !== null && Number.isFinite(report.blocks[4].psnrDb), 'the frames differ too');
  assert.is(report.latent!.lastBlocks, 5);
  assert.ok(Math.abs(report.latent!.meanLast - errors.reduce((a, b) => a + b, 0) / 5) < 1e-12);
});

test('the same configuration twice: zero latent error; decoder.kind none compares latents only', async () => {
  const same = await run(['--blocks', '4', '--b', 'engine.threads=1']);
  assert.is(same.code, 0, same.stderr);
  assert.equal(same.report.blocks.map((b) => b.latentRelL2), [0, 0, 0, 0]);

  const none = await run(['--blocks', '4', '--set', 'decoder.kind=none', '--set', 'generation.opening=noise', '--b', 'cache.sparse.stride=3']);
  assert.is(none.code, 0, none.stderr);
  assert.match(none.stdout, /latents only/);
  assert.is(none.report.overall, null);
  assert.ok(none.report.blocks.every((b) => b.psnrDb === null && b.maxAbs === null));
  assert.ok(none.report.blocks[3].latentRelL2! > 0);
});

test.run();
