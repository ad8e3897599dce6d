import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, parseOverride, validateConfig, defaultConfigPath } from '../../src/config/load.js';
import { SinkstreamError } from '../../src/errors.js';
import { modelDims } from '../../src/model/dims.js';

function tmpYaml(name: string, text: string, dir = mkdtempSync(path.join(tmpdir(), 'ss-config-'))): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

function expectConfigError(fn: () => unknown, code: string, ...fragments: string[]): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, SinkstreamError);
    const err = e as SinkstreamError;
    assert.is(err.code, code, err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `message should mention '${f}': ${err.message}`);
    assert.ok(err.isBadInput);
    return;
  }
  assert.unreachable('expected an error');
}

test('the default configuration loads with every section filled', () => {
  const config = loadConfig();
  assert.is(config.engine.name, 'ort');
  assert.is(config.engine.provider, 'cpu');
  assert.ok(['window', 'sink', 'deep-sink', 'ema-sink'].includes(config.cache.policy));
  assert.is(config.output.path, 'out.mp4');
  assert.ok(config.generation.steps.length >= 1);
});

test('every shipped preset is valid', async () => {
  const { readdirSync } = await import('node:fs');
  const dir = path.join(path.dirname(defaultConfigPath), 'presets');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4, 'presets for window, sink, ema-sink and deep-sink');
  const policies = new Set<string>();
  for (const f of files) policies.add(loadConfig({ file: path.join(dir, f) }).cache.policy);
  for (const p of ['window', 'sink', 'ema-sink', 'deep-sink']) assert.ok(policies.has(p), `a preset uses ${p}`);
});

test('--set overrides parse values as YAML and nest keys', () => {
  assert.equal(parseOverride('cache.window=15'), { cache: { window: 15 } });
  assert.equal(parseOverride('generation.steps=[1000,500]'), { generation: { steps: [1000, 500] } });
  assert.equal(parseOverride('cache.participative.rephase=true'), { cache: { participative: { rephase: true } } });
  assert.equal(parseOverride('generation.prompt=a red circle'), { generation: { prompt: 'a red circle' } });
  const config = loadConfig({ set: ['cache.policy=deep-sink', 'cache.window=21', 'cache.sink=10'] });
  assert.is(config.cache.policy, 'deep-sink');
  assert.is(config.cache.window, 21);
  assert.is(config.cache.sink, 10);
});

test('a malformed --set is an argument error', () => {
  expectConfigError(() => parseOverride('cache.window'), 'ERR_ARGUMENT', 'key=value');
});

test('an unknown key is rejected with its path', () => {
  expectConfigError(() => loadConfig({ set: ['cache.windw=12'] }), 'ERR_CONFIG_INVALID', 'cache.windw', 'unknown key');
});

test('a wrong type or value names the key and the allowed values', () => {
  expectConfigError(() => loadConfig({ set: ['cache.policy=lru'] }), 'ERR_CONFIG_INVALID', 'cache.policy', 'window', 'ema-sink');
  expectConfigError(() => loadConfig({ set: ['cache.window=twelve'] }), 'ERR_CONFIG_INVALID', 'cache.window');
  expectConfigError(() => loadConfig({ set: ['engine.provider=cuda'] }), 'ERR_CONFIG_INVALID', 'engine.provider', 'webgpu');
});

test('model.arch.prediction: flow by default, sample taken and carried into the model dims, anything else refused', () => {
  const wan = path.join(path.dirname(defaultConfigPath), 'wan-1.3b.yaml'); // Wan's models predict the flow; the key is not set there
  assert.is(loadConfig({ file: wan }).model.arch.prediction, 'flow');
  assert.is(modelDims(loadConfig({ file: wan })).prediction, 'flow');
  assert.is(loadConfig().model.arch.prediction, 'sample', 'the bundled demo model predicts x0');
  assert.is(loadConfig({ set: ['model.arch.prediction=flow'] }).model.arch.prediction, 'flow');
  const sample = loadConfig({ set: ['model.arch.prediction=sample'] });
  assert.is(sample.model.arch.prediction, 'sample');
  assert.is(modelDims(sample).prediction, 'sample');
  const inFile = tmpYaml('sample.yaml', 'model:\n  arch:\n    prediction: sample\n');
  assert.is(loadConfig({ file: inFile }).model.arch.prediction, 'sample');
  expectConfigError(() => loadConfig({ set: ['model.arch.prediction=bogus'] }), 'ERR_CONFIG_INVALID', 'model.arch.prediction', 'flow', 'sample');
  expectConfigError(() => loadConfig({ set: ['model.arch.prediction=1'] }), 'ERR_CONFIG_INVALID', 'model.arch.prediction');
});

test('an impossible combination is rejected: window not larger than sink + block', () => {
  expectConfigError(() => loadConfig({ set: ['cache.policy=sink', 'cache.window=6', 'cache.sink=3', 'generation.blockFrames=3'] }), 'ERR_CONFIG_INVALID', 'cache.window');
});

test('generation.opening scene: needs model.scene and a pixel decoder; model.openingWeights is no longer a key', () => {
  const noScene = tmpYaml('no-scene.yaml', 'generation:\n  opening: scene\n');
  expectConfigError(() => loadConfig({ file: noScene }), 'ERR_CONFIG_INVALID', 'model.scene', 'palette.json');
  expectConfigError(() => loadConfig({ set: ['decoder.kind=none', 'generation.opening=scene'] }), 'ERR_CONFIG_INVALID', 'generation.opening', 'space-to-depth');
  expectConfigError(() => loadConfig({ set: ['model.openingWeights=synthetic', 'generation.opening=noise'] }), 'ERR_CONFIG_INVALID', 'model.openingWeights', 'unknown key');
  expectConfigError(() => loadConfig({ set: ['generation.opening=image'] }), 'ERR_CONFIG_INVALID', 'generation.opening', 'scene');
});

test('extends merges a parent file and resolves paths against the file that sets them', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ss-config-'));
  tmpYaml('base.yaml', 'model:\n  weights: weights/m.safetensors\ncache:\n  window: 15\n', dir);
  const child = tmpYaml('child.yaml', 'extends: base.yaml\ncache:\n  policy: window\n', dir);
  const doc = loadConfig({ file: child });
  assert.is(doc.cache.window, 15);
  assert.is(doc.cache.policy, 'window');
  assert.is(doc.model.weights, path.join(dir, 'weights/m.safetensors'));
});

test('unreadable and unparsable files are configuration-file errors naming the file', () => {
  expectConfigError(() => loadConfig({ file: '/nonexistent/x.yaml' }), 'ERR_CONFIG_FILE', '/nonexistent/x.yaml');
  const bad = tmpYaml('bad.yaml', 'cache: [unclosed\n');
  expectConfigError(() => loadConfig({ file: bad }), 'ERR_CONFIG_FILE', bad);
});

test('validateConfig fills defaults for an empty document', () => {
  const config = validateConfig({});
  assert.is(config.generation.shift, 5);
  assert.equal(config.generation.steps, [1000, 750, 500, 250]);
});

test('a bad command-line setting names the setting, not the configuration file', () => {
  const messageOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      assert.instance(e, SinkstreamError);
      assert.is((e as SinkstreamError).code, 'ERR_CONFIG_INVALID');
      return (e as SinkstreamError).message;
    }
    throw new Error('expected an error');
  };
  const unknown = messageOf(() => loadConfig({ set: ['cache.polcy=sink'] }));
  assert.match(unknown, /--set cache\.polcy=sink: cache\.polcy: unknown key/);
  assert.not.match(unknown, /default\.yaml/);
  const combination = messageOf(() => loadConfig({ set: ['cache.window=5', 'cache.sink=3'] }));
  assert.match(combination, /--set cache\.window=5: cache\.window/);
  assert.not.match(combination, /default\.yaml/);
  // A command's own option is named by its flag; the token's value is not repeated.
  const token = messageOf(() => loadConfig({ set: [{ assignment: 'serve.token="short"', origin: '--token' }] }));
  assert.match(token, /--token: serve\.token: /);
  assert.not.match(token, /short|default\.yaml/);
  // A problem in the file still names the file, beside the setting's own.
  const file = tmpYaml('bad.yaml', 'cache:\n  polcy: sink\n');
  const both = messageOf(() => loadConfig({ file, set: ['cache.windw=9'] }));
  assert.ok(both.startsWith(`${file}: invalid configuration`), both);
  assert.match(both, /\n  cache\.polcy: unknown key/);
  assert.match(both, /--set cache\.windw=9: cache\.windw: unknown key/);
});

test.run();
