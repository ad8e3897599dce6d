/**
 * NativeDecoderCalls (src/decode/native-decoder.ts), what both native decoders run on: opening (create, weights,
 * finalize; the handle freed when a step fails), decode and reset in order, frames as views, a latent of the wrong
 * size refused before the addon sees it, close. Over the TAEHV functions of a stand-in addon.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NativeDecoderCalls } from '../../src/decode/native-decoder.js';
import type { NativeTaehvHandle, NativeTaehvInfo } from '../../src/engine/native/addon-types.js';
import { nativeDecoderStandIn, type StandInOptions } from './helpers/native-decoder-stand-in.js';
import { rejectsWith } from '../helpers/assertions.js';

const layout = { latentChannels: 16, latentHeight: 2, latentWidth: 3, framesPerLatentFrame: 4 };

function open(options: StandInOptions = {}) {
  const s = nativeDecoderStandIn('taehv', (F) => 4 * F - 3, options);
  const a = s.addon;
  const dims = { latentChannels: 16, latentHeight: 2, latentWidth: 3, channels: [8, 8, 4, 4] as [number, number, number, number] };
  const opening = NativeDecoderCalls.open<NativeTaehvHandle, NativeTaehvInfo>(
    'native test decoder',
    {
      create: () => a.createTaehv(dims, 0, 1),
      setWeight: (h, key, data) => a.taehvSetWeight(h, key, data),
      finalize: (h, frames) => a.taehvFinalize(h, frames),
      decode: (h, latent, frames, out) => a.taehvDecode(h, latent, frames, out),
      reset: (h) => a.taehvReset(h),
      info: (h) => a.taehvInfo(h),
      destroy: (h) => a.taehvDestroy(h),
    },
    [
      ['w.a', new Float32Array(2)],
      ['w.b', new Float32Array(3)],
    ],
    2,
    layout,
  );
  return { s, opening };
}

test('open hands every weight over, then finalizes with the warm-up frames; the size comes from the addon', async () => {
  const { s, opening } = open();
  const d = await opening;
  assert.equal([...s.weights.keys()], ['w.a', 'w.b']);
  assert.equal(s.log, ['finalize 2']);
  assert.equal([d.width, d.height], [24, 16]);
  assert.is(d.info().provider, 'stand-in');
  await d.close();
});

test('decode: calls in order even when not awaited, frames are views of one buffer; reset starts over', async () => {
  const { s, opening } = open();
  const d = await opening;
  const plane = 16 * 2 * 3;
  const [first, second] = await Promise.all([d.decode(new Float32Array(2 * plane).fill(7)), d.decode(new Float32Array(2 * plane).fill(8))]);
  assert.not.ok(s.overlapped(), 'the second decode waited for the first');
  assert.equal(s.log.slice(1), ['decode 7 2', 'decode 8 2']);
  assert.equal([first.length, second.length], [5, 8]);
  for (const f of [...first, ...second]) assert.is(f.length, 24 * 16 * 3);
  assert.is(first[1].buffer, first[0].buffer);
  await d.reset();
  assert.is((await d.decode(new Float32Array(2 * plane))).length, 5);
  await d.close();
});

test('a latent of the wrong size is refused before the addon sees it', async () => {
  const { s, opening } = open();
  const d = await opening;
  for (const n of [0, 16 * 6 + 1]) await rejectsWith(() => d.decode(new Float32Array(n)), 'ERR_ENGINE', /native test decoder: .*\[16, F, 2, 3\]/);
  assert.equal(s.log, ['finalize 2']);
  await d.close();
});

test('close is idempotent and frees the handle once; later calls are ERR_CLOSED', async () => {
  const { s, opening } = open();
  const d = await opening;
  await d.close();
  await d.close();
  assert.is(s.destroyed(), 1);
  await rejectsWith(() => d.decode(new Float32Array(96)), 'ERR_CLOSED');
  await rejectsWith(() => d.reset(), 'ERR_CLOSED');
  assert.throws(() => d.info(), (e: { code?: string }) => e.code === 'ERR_CLOSED');
});

test('a decoder the addon cannot create is ERR_ENGINE_UNAVAILABLE; a failing finalize frees the handle (ERR_ENGINE)', async () => {
  const noCudnn = open({ failCreate: 'the decoder needs cuDNN 9' });
  await rejectsWith(() => noCudnn.opening, 'ERR_ENGINE_UNAVAILABLE', /native test decoder: the decoder needs cuDNN 9/);
  assert.is(noCudnn.s.destroyed(), 0);
  const badWeights = open({ failFinalize: 'weight missing: decoder.22.bias' });
  await rejectsWith(() => badWeights.opening, 'ERR_ENGINE', /decoder\.22\.bias/);
  assert.is(badWeights.s.destroyed(), 1);
});

test.run();
