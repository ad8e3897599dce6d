/**
 * The packed package as a user gets it: scripts/pack-smoke.sh packs the tree, checks the tarball's
 * contents, installs it into a fresh folder (ONNX Runtime's CUDA download skipped, ffmpeg-static's
 * download failing) and renders 8 frames there with `npx sinkstream render`, without network
 * where this user may make a network namespace.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('npm pack -> install into a fresh folder -> npx sinkstream render writes a playable clip', async () => {
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn('bash', [path.join(root, 'scripts', 'pack-smoke.sh')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // a hung install or render fails the test instead of holding the suite
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve({ code: c, output });
    });
  });
  assert.is(code, 0, `pack-smoke.sh failed:\n${output.slice(-4000)}`);
  assert.match(output, /ok: x\.mp4, \d+ bytes, 8 frames/);
});

test.run();
