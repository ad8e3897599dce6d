import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { controlMessage, createBody, retuneBody, streamOverrides } from '../../src/serve/protocol.js';

test('valid control messages parse', () => {
  for (const m of [
    { type: 'create', prompt: 'a red circle bouncing on a black background' },
    { type: 'create', prompt: 'a red circle bouncing on a black background', req: 3, watch: false, record: true, overrides: { cache: { policy: 'window', window: 9 }, generation: { seed: 4 } } },
    { type: 'watch', stream: 'ab12cd34ef' },
    { type: 'unwatch' },
    { type: 'prompt', stream: 'ab12cd34ef', prompt: 'a blue square bouncing on a dark blue background' },
    { type: 'retune', stream: 'ab12cd34ef', cache: { sink: 2 } },
    { type: 'stop', stream: 'ab12cd34ef' },
    { type: 'list' },
    { type: 'ping', req: 0 },
  ]) {
    assert.ok(controlMessage.safeParse(m).success, JSON.stringify(m));
  }
});

test('overrides are patches: only what is named, no defaults filled in', () => {
  assert.equal(streamOverrides.parse({ cache: { window: 9 } }), { cache: { window: 9 } });
  assert.equal(retuneBody.parse({ cache: { participative: { budget: 8 } } }), { cache: { participative: { budget: 8 } } });
});

test('what a client may not send', () => {
  for (const m of [
    { type: 'create', prompt: 'x', overrides: { model: { weights: '/etc/passwd' } } },
    { type: 'create', prompt: 'x', overrides: { output: { path: '/tmp/x.mp4' } } },
    { type: 'create', prompt: 'x', overrides: { serve: { token: 'x' } } },
    { type: 'create', prompt: 'x', overrides: { generation: { prompt: 'sneaky' } } },
    { type: 'create', prompt: 'x', overrides: { cache: { bogus: 1 } } },
    { type: 'create', prompt: '   ' },
    { type: 'create', prompt: 'x'.repeat(1001) },
    { type: 'watch', stream: '../etc' },
    { type: 'watch', stream: 'A'.repeat(41) },
    { type: 'ping', req: -1 },
    { type: 'ping', extra: true },
    { type: 'nope' },
  ]) {
    assert.not.ok(controlMessage.safeParse(m).success, JSON.stringify(m));
  }
  assert.not.ok(createBody.safeParse({ prompt: 'x', type: 'create' }).success);
});

test.run();
