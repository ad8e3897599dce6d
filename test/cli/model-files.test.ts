/**
 * Broken model files, end to end: a weights path that is a folder, a truncated file, NaN weights,
 * weights that make the model diverge. `render` and `serve` (the real CLI in a child process, with a
 * deadline so that a hang fails instead of blocking) refuse them with the same message.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeVideo, tempDir } from '../encode/helpers.js';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors.js';
import { loadConfig } from '../../src/config/load.js';
import { SinkstreamServer } from '../../src/serve/server.js';
import { SinkstreamError } from '../../src/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const entry = path.join(root, 'src/cli/run.ts');
const demoWeights = path.join(root, 'models/demo/model.safetensors');
const EXIT_DEADLINE_MS = 90_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; rejects if it is still running at the deadline, or (serve) once it listens. */
function cli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, env: { ...process.env, FORCE_COLOR: '0', SINKSTREAM_TOKEN: '' } });
    let stdout = '';
    let stderr = '';
    const fail = (why: string) => {
      child.kill('SIGKILL');
      reject(new Error(`sinkstream ${args.join(' ')} ${why}; stdout:\n${stdout}\nstderr:\n${stderr}`));
    };
    const deadline = setTimeout(() => fail(`did not exit within ${EXIT_DEADLINE_MS / 1000} s`), EXIT_DEADLINE_MS);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (/listening on/.test(stdout)) fail('started listening');
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(deadline);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The demo model's tensors, changed by `edit`, written to a new file. */
async function editedWeights(name: string, edit: (tensors: Awaited<ReturnType<typeof readSafetensors>>) => void): Promise<string> {
  const tensors = await readSafetensors(demoWeights);
  edit(tensors);
  const file = path.join(tempDir('weights'), name);
  await writeSafetensors(file, tensors);
  return file;
}

/** The `sinkstream: ... [ERR_...]` line. */
const errorLine = (stderr: string): string | undefined => stderr.split('\n').find((l) => /^sinkstream: .*\[ERR_[A-Z_]+\]$/.test(l));

test('a weights path that is a folder: exit 2, ERR_MODEL_FILE naming the path as a folder, nothing written', async () => {
  const folder = tempDir('weights-folder');
  const out = path.join(tempDir('never'), 'never.mp4');
  const run = await cli(['render', '--frames', '6', '--no-progress', '--out', out, '--set', `model.weights=${folder}`]);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, new RegExp(`${folder}: is a folder; expected a checkpoint file .*\\[ERR_MODEL_FILE\\]`));
  assert.not.match(run.stderr, /\n\s+at /, 'no stack trace');
  assert.not.ok(fs.existsSync(out));
});

test('NaN weights: exit 2 at load, ERR_MODEL_FILE naming the first bad tensor, nothing written', async () => {
  const weights = await editedWeights('nan.safetensors', (t) => t.get('blocks.2.ffn.0.weight')!.data.fill(NaN, 100));
  const out = path.join(tempDir('never'), 'never.mp4');
  const run = await cli(['render', '--frames', '6', '--no-progress', '--out', out, '--set', `model.weights=${weights}`]);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /tensor 'blocks\.2\.ffn\.0\.weight' holds NaN at element 100 of \d+; expected finite weights .*\[ERR_MODEL_FILE\]/);
  assert.not.ok(fs.existsSync(out));
});

test('text encoder neighbour tables: a pair renders (other frames than without), one alone is exit 2 naming the other, nothing written', async () => {
  const vocabSize = JSON.parse(fs.readFileSync(path.join(root, 'models/demo/vocab.json'), 'utf8')).length;
  const table = (seed: number) => ({ shape: [vocabSize, 64], data: Float32Array.from({ length: vocabSize * 64 }, (_, i) => Math.sin(seed * 1000 + i)) });
  const paired = await editedWeights('neighbours.safetensors', (t) => {
    t.set('text_encoder.previous.weight', table(1));
    t.set('text_encoder.next.weight', table(2));
  });
  const dir = tempDir('neighbours');
  const frames = async (weights: string, name: string): Promise<Buffer> => {
    const out = path.join(dir, name);
    const run = await cli(['render', '--frames', '3', '--no-progress', '--out', out, '--set', `model.weights=${weights}`]);
    assert.is(run.code, 0, run.stderr);
    return fs.readFileSync(out);
  };
  assert.not.ok((await frames(paired, 'paired.mp4')).equals(await frames(demoWeights, 'plain.mp4')), 'the neighbour tables change the context');
  const half = await editedWeights('half.safetensors', (t) => {
    t.delete('text_encoder.previous.weight'); // the bundled model may hold the pair
    t.set('text_encoder.next.weight', table(2));
  });
  const out = path.join(tempDir('never'), 'never.mp4');
  const run = await cli(['render', '--frames', '3', '--no-progress', '--out', out, '--set', `model.weights=${half}`]);
  assert.is(run.code, 2, run.stderr);
  assert.match(errorLine(run.stderr) ?? '', /has text_encoder\.next\.weight but not text_encoder\.previous\.weight.*\[ERR_MODEL_SHAPE\]/);
  assert.not.ok(fs.existsSync(out));
});

test('weights that make the model diverge: exit 1 at the first non-finite block, the frames before it playable', async () => {
  // Finite, but far too large for float32 arithmetic: the first generated block's latent is NaN.
  const weights = await editedWeights('huge.safetensors', (t) => {
    for (const tensor of t.values()) for (let i = 0; i < tensor.data.length; i++) tensor.data[i] *= 1e20;
  });
  const out = path.join(tempDir('diverged'), 'diverged.mp4');
  // The first block drawn from the prompt (not generated), so that frames come before the divergence.
  const run = await cli(['render', '--frames', '24', '--no-progress', '--out', out, '--set', `model.weights=${weights}`, '--set', 'generation.opening=scene']);
  assert.is(run.code, 1, run.stderr);
  assert.match(run.stderr, /block 1: the denoised latent holds (NaN|-?Infinity) .*the model diverged.*\[ERR_ENGINE\]/);
  // Block 0's frames are in the file.
  const video = await probeVideo(out);
  assert.is(video.frames, loadConfig().generation.blockFrames);
});

test('serve with a truncated, a NaN or a folder weights file does not start: exit 2 with the message render gives', async () => {
  const dir = tempDir('bad-weights');
  const truncated = path.join(dir, 'truncated.safetensors');
  fs.writeFileSync(truncated, fs.readFileSync(demoWeights).subarray(0, 300_000));
  const nan = await editedWeights('nan.safetensors', (t) => t.get('blocks.0.self_attn.q.weight')!.data.fill(NaN));
  for (const weights of [truncated, nan, dir]) {
    const set = ['--set', `model.weights=${weights}`];
    const served = await cli(['serve', '--port', '0', ...set]);
    assert.is(served.code, 2, served.stderr);
    const rendered = await cli(['render', '--frames', '3', '--no-progress', '--out', path.join(dir, 'never.mp4'), ...set]);
    assert.is(rendered.code, 2, rendered.stderr);
    assert.ok(errorLine(served.stderr)?.includes('[ERR_MODEL_FILE]'), served.stderr);
    assert.is(errorLine(served.stderr), errorLine(rendered.stderr));
  }
});

test('serve with a text vocabulary that cannot be read does not start', async () => {
  const served = await cli(['serve', '--port', '0', '--set', 'text.vocab=/nonexistent/vocab.json']);
  assert.is(served.code, 2, served.stderr);
  assert.match(served.stderr, /\/nonexistent\/vocab\.json.*\[ERR_MODEL_FILE\]/);
});

test('SinkstreamServer.listen checks the model before listening', async () => {
  const dir = tempDir('bad-weights');
  const truncated = path.join(dir, 'truncated.safetensors');
  fs.writeFileSync(truncated, fs.readFileSync(demoWeights).subarray(0, 300_000));
  const config = loadConfig({ set: [`model.weights=${truncated}`, 'serve.port=0'] });
  let error: unknown;
  const server = await SinkstreamServer.listen({ config, env: {}, scheduling: false }).catch((e: unknown) => ((error = e), undefined));
  if (server) await server.close();
  assert.instance(error, SinkstreamError);
  assert.is((error as SinkstreamError).code, 'ERR_MODEL_FILE');
  assert.match((error as SinkstreamError).message, /truncated/);
});

test.run();
