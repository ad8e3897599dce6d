/**
 * The optional CUDA addon's loader (runs everywhere, GPU or not): explicit load order, a child-process
 * probe that keeps a broken build out of this process, and one clear error that says how to build it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { ADDON_ENV, addonCandidates, loadNativeAddon, packageRoot } from '../../src/engine/native/addon-loader.js';
import { withAddonFile } from '../../tools/stand-in/native-addon.js';
import { isSinkstreamError, SinkstreamError } from '../../src/errors.js';

function refusal(fn: () => unknown): SinkstreamError {
  try {
    fn();
  } catch (e) {
    assert.ok(isSinkstreamError(e), `a SinkstreamError, got ${String(e)}`);
    return e as SinkstreamError;
  }
  throw new Error('expected a refusal');
}

test('load order: the environment path first, then the local build', () => {
  const c = addonCandidates({ [ADDON_ENV]: 'some/where/x.node' });
  assert.is(c.length, 2);
  assert.is(c[0].path, path.resolve('some/where/x.node'));
  assert.is(c[0].from, ADDON_ENV);
  assert.is(c[1].path, path.join(packageRoot(), 'native', 'build', 'sinkstream_native.node'));
  assert.is(addonCandidates({}).length, 1);
});

test('a missing explicit path is refused by name, with how to build, and does not fall through', () => {
  const missing = path.join(tmpdir(), 'no-such-dir', 'sinkstream_native.node');
  const e = refusal(() => loadNativeAddon({ [ADDON_ENV]: missing }));
  assert.is(e.code, 'ERR_ENGINE_UNAVAILABLE');
  assert.ok(e.message.includes(missing), e.message);
  assert.ok(e.message.includes('npm run build:native'), e.message);
  assert.not.ok(e.message.includes('the local build'), 'an explicit path is not silently replaced');
});

test('a file that is not a loadable addon is refused after a child-process probe; this process survives', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ssn-addon-'));
  const bogus = path.join(dir, 'sinkstream_native.node');
  writeFileSync(bogus, 'not an ELF shared object');
  const e = refusal(() => loadNativeAddon({ [ADDON_ENV]: bogus }));
  assert.is(e.code, 'ERR_ENGINE_UNAVAILABLE');
  assert.ok(e.message.includes('does not load'), e.message);
  assert.ok(e.message.includes(bogus), e.message);
});

test('engine.name native without a build is ERR_ENGINE_UNAVAILABLE (bad input, exit status 2)', async () => {
  const local = addonCandidates({})[0].path;
  if (existsSync(local) && !process.env[ADDON_ENV]) {
    console.log('  (skipped: a local native build exists here)');
    return;
  }
  await withAddonFile(path.join(tmpdir(), 'absent', 'sinkstream_native.node'), async () => {
    try {
      await createEngine(configSchema.parse({ engine: { name: 'native' } }));
      assert.unreachable('should refuse');
    } catch (e) {
      assert.ok(isSinkstreamError(e));
      assert.is((e as SinkstreamError).code, 'ERR_ENGINE_UNAVAILABLE');
      assert.ok((e as SinkstreamError).isBadInput);
      assert.ok((e as Error).message.includes('npm run build:native'));
    }
  });
});

test.run();
