import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { cacheConfigProblems } from '../../src/config/checks/cache.js';
import { loadConfig } from '../../src/config/load.js';

function problems(input: ConfigInput): string[] {
  return cacheConfigProblems(configSchema.parse(input)).map((p) => `${p.path}: ${p.message}`);
}

test('the default configuration and every preset are possible', () => {
  assert.equal(problems({}), []);
  const dir = path.resolve('configs/presets');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    assert.equal(cacheConfigProblems(loadConfig({ file: path.join(dir, file) })), [], file);
  }
});

test('a window that leaves no history', () => {
  assert.match(problems({ cache: { policy: 'sink', window: 6, sink: 3 } }).join('\n'), /cache.window: 6 must be larger than cache.sink \+ generation.blockFrames \(3 \+ 3\)/);
  assert.match(problems({ cache: { policy: 'window', window: 3 } }).join('\n'), /cache.window: 3 must be larger than generation.blockFrames/);
  assert.equal(problems({ cache: { policy: 'window', window: 4, sink: 3 } }), []);
});

test('ema-sink without sink slots, or with compression', () => {
  assert.match(problems({ cache: { policy: 'ema-sink', window: 9, sink: 0 } }).join('\n'), /cache.sink: ema-sink needs at least 1/);
  assert.match(
    problems({ cache: { policy: 'ema-sink', window: 9, sink: 3, compression: 'participative', participative: { budget: 9, recent: 3 } } }).join('\n'),
    /cache.compression: participative compression does not combine with ema-sink/,
  );
});

test('participative budget, recent and sink must fit the window', () => {
  const base = { policy: 'deep-sink', window: 21, sink: 10, compression: 'participative' } as const;
  assert.equal(problems({ cache: { ...base, participative: { budget: 16, recent: 4 } } }), []);
  assert.match(problems({ cache: { ...base, participative: { budget: 22, recent: 4 } } }).join('\n'), /cache.participative.budget: 22 exceeds cache.window \(21\)/);
  assert.match(problems({ cache: { ...base, participative: { budget: 16, recent: 2 } } }).join('\n'), /cache.participative.recent: 2 is smaller than generation.blockFrames/);
  assert.match(problems({ cache: { ...base, participative: { budget: 14, recent: 4 } } }).join('\n'), /no top-C tokens: it must exceed sink \+ recent \(10 \+ 4\)/);
  // window policy has no sink: budget 5 = 0 + 4 + 1 works
  assert.equal(problems({ cache: { policy: 'window', window: 12, compression: 'participative', participative: { budget: 5, recent: 4 } } }), []);
});

test('the window plus a block must fit the RoPE table', () => {
  assert.match(problems({ model: { arch: { ropeMaxPosition: 14 } }, cache: { window: 12 } }).join('\n'), /exceeds the RoPE table/);
  assert.equal(problems({ model: { arch: { ropeMaxPosition: 15 } }, cache: { window: 12 } }), []);
});

test.run();
