/** text.encoder umt5 end to end (its own thread, shared, cached) and prompt switches that wait for their context. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
import type { Engine } from '../../src/engine/types.js';
import { SinkstreamError } from '../../src/errors.js';
import { CachedPromptEncoder } from '../../src/text/context-cache.js';
import { connectTextEncoder, RemotePromptEncoder } from '../../src/text/shared-text-encoder.js';
import { createPromptEncoder, type PromptEncoder } from '../../src/text/prompt-encoder.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const reference = JSON.parse(readFileSync(path.join(fixtures, 'umt5-tiny-encoder.json'), 'utf8')) as {
  seed: number;
  cases: { prompt?: string; ids: number[]; context: number[] }[];
};
const umt5 = [
  'model.weights=synthetic',
  'model.arch.layers=2',
  'model.arch.textLen=32',
  'engine.threads=1',
  'generation.opening=noise',
  'text.encoder=umt5',
  `text.tokenizer=${path.join(fixtures, 'umt5-tiny-bytefallback.model')}`,
  `text.syntheticSeed=${reference.seed}`,
  'text.arch.dim=64',
  'text.arch.layers=2',
  'text.arch.heads=4',
  'text.arch.ffnDim=160',
  'text.arch.vocab=420',
  'text.threads=1',
];

test('text.encoder umt5: the context comes from the encoder thread, equal to the PyTorch reference, zero past the tokens', async () => {
  const config = loadConfig({ set: umt5 });
  const encoder = await createPromptEncoder(config, new Map());
  try {
    assert.is(encoder.kind, 'umt5');
    const { prompt, ids, context: want } = reference.cases[0];
    const context = await encoder.encode(prompt!);
    assert.is(context.length, 32 * 64);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(context[i] - want[i]));
    assert.ok(worst < 2e-5, `max |error| ${worst}`);
    assert.ok(context.subarray(ids.length * 64).every((v) => v === 0));
    // a second generator of the same config shares the encoder: it does not load it again
    const again = await createPromptEncoder(config, new Map());
    assert.equal([...(await again.encode(prompt!))], [...context]);
    await again.close?.();
  } finally {
    await encoder.close?.();
  }
});

test('text.encoder umt5 without text.tokenizer, or with a dim other than model.arch.textDim: ERR_CONFIG_INVALID naming the key', async () => {
  for (const [set, key] of [
    [umt5.filter((s) => !s.startsWith('text.tokenizer=')), 'text.tokenizer'],
    [[...umt5, 'model.arch.textDim=32'], 'text.arch.dim'],
  ] as const) {
    try {
      await createPromptEncoder(loadConfig({ set: [...set] }), new Map());
      assert.unreachable();
    } catch (e) {
      assert.is((e as SinkstreamError).code, 'ERR_CONFIG_INVALID');
      assert.match((e as Error).message, key);
    }
  }
});

/** An encoder whose contexts are filled with a number per prompt, counted, optionally held until released. */
function countingEncoder(hold = new Set<string>()) {
  const calls: string[] = [];
  const waiting = new Map<string, () => void>();
  const encoder: PromptEncoder = {
    kind: 'umt5',
    textLen: 2,
    textDim: 3,
    async encode(prompt: string) {
      calls.push(prompt);
      if (prompt.startsWith('bad')) throw new SinkstreamError('ERR_PROMPT', `cannot encode '${prompt}'`);
      if (hold.has(prompt)) await new Promise<void>((resolve) => waiting.set(prompt, resolve));
      return new Float32Array(6).fill(prompt.length);
    },
  };
  return { encoder, calls, release: (prompt: string) => waiting.get(prompt)!() };
}

test('context cache: LRU of text.cacheSize, one encoding for concurrent requests, own copies, disk across runs', async () => {
  const { encoder, calls } = countingEncoder();
  const cache = new CachedPromptEncoder(encoder, { size: 2, identity: 'x' });
  const [a1, a2] = await Promise.all([cache.encode('aa'), cache.encode('aa')]);
  assert.equal(calls, ['aa'], 'concurrent requests share one encoding');
  a1[0] = 99;
  assert.is(a2[0], 2, 'each caller has its own copy');
  assert.is((await cache.encode('aa'))[0], 2);
  await cache.encode('bbb');
  await cache.encode('aa'); // most recently used: aa
  await cache.encode('cccc'); // evicts bbb
  await cache.encode('aa');
  assert.equal(calls, ['aa', 'bbb', 'cccc']);
  await cache.encode('bbb');
  assert.equal(calls, ['aa', 'bbb', 'cccc', 'bbb'], 'bbb was evicted');

  const dir = mkdtempSync(path.join(tmpdir(), 'sinkstream-ctx-'));
  const first = countingEncoder();
  await new CachedPromptEncoder(first.encoder, { size: 0, dir, identity: 'w1' }).encode('dd');
  assert.is(readdirSync(dir).length, 1);
  const second = countingEncoder();
  const fromDisk = await new CachedPromptEncoder(second.encoder, { size: 0, dir, identity: 'w1' }).encode('dd');
  assert.equal([...fromDisk], [2, 2, 2, 2, 2, 2]);
  assert.equal(second.calls, [], 'read from disk, not encoded');
  const other = countingEncoder();
  await new CachedPromptEncoder(other.encoder, { size: 0, dir, identity: 'w2' }).encode('dd');
  assert.equal(other.calls, ['dd'], 'another encoder identity does not reuse the file');
});

test("a generator thread's remote encoder: contexts cross the port; after close, ERR_CLOSED", async () => {
  const config = loadConfig({ set: umt5 });
  const { port, textLen, textDim } = await connectTextEncoder(config);
  const remote = new RemotePromptEncoder(port, textLen, textDim);
  try {
    const context = await remote.encode(reference.cases[0].prompt!);
    assert.is(context.length, textLen * textDim);
    assert.ok(Math.abs(context[0] - reference.cases[0].context[0]) < 2e-5);
  } finally {
    await remote.close();
  }
  try {
    await remote.encode('x');
    assert.unreachable();
  } catch (e) {
    assert.is((e as SinkstreamError).code, 'ERR_CLOSED');
  }
});

/** Records, per forward, the context the engine's cross-attention reads (its first value). */
function recordingEngine(seen: number[]): Engine {
  let context = NaN;
  let rows = 0;
  return {
    name: 'recording',
    async setPrompt(c) {
      context = c[0];
    },
    async forward(r) {
      seen.push(context);
      return { flow: new Float32Array(r.latent.length) };
    },
    async updateCache(u) {
      rows = u.rows;
    },
    async scoreCache() {
      return new Float32Array(0);
    },
    async releaseQueries() {},
    async resetCache() {},
    async readCache() {
      return { keys: new Float32Array(0), values: new Float32Array(0), positions: new Float32Array(0), rows };
    },
    info: () => ({ name: 'recording', provider: 'test', cacheRows: rows, pendingRows: 0 }),
    async close() {},
  };
}

test('a prompt switch takes effect at the first block that starts after its context is ready; blocks go on meanwhile', async () => {
  const { encoder, release } = countingEncoder(new Set(['slow', 'later-but-slow']));
  const config = loadConfig({ set: ['model.weights=synthetic', 'model.arch.layers=2', 'model.arch.textLen=2', 'engine.threads=1', 'generation.opening=noise', 'generation.prompt=p', 'generation.steps=[1000]'] });
  const seen: number[] = [];
  const g = await createGenerator(config, { engine: recordingEngine(seen), text: encoder });
  /** The context of the block's last denoising forward. */
  const contextOfBlock = async (): Promise<number> => {
    await g.next();
    return seen[seen.length - 1];
  };
  assert.is(await contextOfBlock(), 1, "block 0: 'p'");
  const switching = g.setPrompt('slow');
  assert.is(await contextOfBlock(), 1, 'block 1 starts while the context is being encoded: old prompt');
  assert.is(await contextOfBlock(), 1, 'block 2 too');
  release('slow');
  await switching;
  assert.is(await contextOfBlock(), 4, "block 3 starts after the context is ready: 'slow'");
  // a later request wins even when its context arrives first
  const older = g.setPrompt('later-but-slow');
  await g.setPrompt('quick!');
  release('later-but-slow');
  await older;
  assert.is(await contextOfBlock(), 6, "'quick!' is in force, not 'later-but-slow'");
  // a prompt the encoder refuses reaches the caller; the stream keeps its prompt
  try {
    await g.setPrompt('bad prompt');
    assert.unreachable();
  } catch (e) {
    assert.is((e as SinkstreamError).code, 'ERR_PROMPT');
  }
  assert.is(await contextOfBlock(), 6);
  assert.is(g.config.generation.prompt, 'quick!');
  await g.close();
});

test.run();
