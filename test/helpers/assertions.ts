/** Assertions several suites share. */
import * as assert from 'uvu/assert';
import { isSinkstreamError, type SinkstreamError } from '../../src/errors.js';
import type { ModelWeights } from '../../src/model/weights.js';

/**
 * `work` (a promise, or a function returning one) rejects with a SinkstreamError of `code` whose message holds
 * every fragment (a string it contains, or a pattern it matches).
 */
export async function rejectsWith(work: Promise<unknown> | (() => Promise<unknown>), code: string, ...fragments: Array<string | RegExp>): Promise<void> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (e) {
    assert.ok(isSinkstreamError(e), `not a SinkstreamError: ${String(e)}`);
    const message = (e as Error).message;
    assert.is((e as { code: string }).code, code, message);
    for (const f of fragments) assert.ok(typeof f === 'string' ? message.includes(f) : f.test(message), `message lacks ${String(f)}: ${message}`);
    return;
  }
  assert.unreachable(`expected a rejection with ${code}`);
}

/** The same names and shapes, and values within `tolerance` (bitExact: the same bytes). */
export function assertSameWeights(a: ModelWeights, b: ModelWeights, options: { tolerance?: number; bitExact?: boolean } = {}): void {
  const tolerance = options.tolerance ?? 0;
  assert.equal([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.equal(u.shape, t.shape, k);
    if (options.bitExact) {
      assert.ok(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `data of ${k}`);
      continue;
    }
    let worst = 0;
    t.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - u.data[i]))));
    assert.ok(worst <= tolerance, `${k}: differs by ${worst}`);
  }
}

/** The SinkstreamError `p` rejects with (fails when it resolves or rejects with anything else). */
export async function rejection(p: Promise<unknown>): Promise<SinkstreamError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isSinkstreamError(e), `expected a SinkstreamError, got ${String(e)}`);
    return e as SinkstreamError;
  }
  throw new Error('expected a rejection');
}
