/** serve keeps the umT5 encoder loaded for its lifetime: streams one after another share one load; close releases it. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpJson, startTestServer } from './helpers/server-fixture.js';
import { waitFor } from '../encode/helpers.js';
import { sharedTextEncoderCounts } from '../../src/text/shared-text-encoder.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '../text/fixtures');

/** The tiny umT5 of test/text (synthetic weights, its SentencePiece fixture) in front of a tiny synthetic model. */
const umt5Overrides = {
  model: { weights: 'synthetic', arch: { layers: 2, textLen: 32 } },
  engine: { threads: 1 },
  generation: { opening: 'noise' },
  text: {
    encoder: 'umt5',
    tokenizer: path.join(fixtures, 'umt5-tiny-bytefallback.model'),
    syntheticSeed: 7,
    arch: { dim: 64, layers: 2, heads: 4, ffnDim: 160, vocab: 420 },
    threads: 1,
  },
  // no spare generator: one would hold a reference of its own between streams
  serve: { spareGenerators: 0 },
};

test('two streams one after another load the umT5 encoder once; closing the server releases it', async () => {
  const before = sharedTextEncoderCounts();
  const server = await startTestServer(umt5Overrides);
  try {
    assert.is(sharedTextEncoderCounts().loads, before.loads + 1, 'loaded at start');
    for (const prompt of ['A red fox jumps over the lazy dog.', 'a blue square']) {
      const created = await httpJson(server, 'POST', '/api/streams', { prompt });
      assert.is(created.status, 201, JSON.stringify(created.body));
      const id = created.body.stream.id as string;
      const stopped = await httpJson(server, 'DELETE', `/api/streams/${id}`);
      assert.is(stopped.status, 200, JSON.stringify(stopped.body));
      // the stream's generator has given its reference back: only the server's is left
      await waitFor('the stream to release the encoder', () => (sharedTextEncoderCounts().refs === before.refs + 1 ? true : undefined), 30_000);
      assert.is(sharedTextEncoderCounts().open, before.open + 1, 'still loaded between streams');
    }
    assert.is(sharedTextEncoderCounts().loads, before.loads + 1, 'one load for both streams');
  } finally {
    await server.close();
  }
  assert.equal(sharedTextEncoderCounts(), { ...before, loads: before.loads + 1 }, 'closed with the server');
});

test.run();
