import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { median, RecentSamples } from '../../src/util/stats.js';

test('RecentSamples keeps the last `size` samples, overwriting the oldest', () => {
  const r = new RecentSamples(3);
  assert.equal(r.all(), []);
  [1, 2, 3].forEach((v) => r.push(v));
  assert.equal([...r.all()].sort(), [1, 2, 3]);
  r.push(4);
  r.push(5);
  assert.equal([...r.all()].sort(), [3, 4, 5]);
  assert.is(median(r.all()), 4);
});

test.run();
