/** The demo model refuses, through the real CLI, prompts it was never trained to draw (exit 2, nothing written); its own prompts render. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../encode/helpers.js';
import { runCli } from '../helpers/cli.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const render = (args: string[]) => runCli(['render', '--frames', '6', '--no-progress', ...args]);

const untrained: Array<[string, RegExp]> = [
  ['a purple circle on a black background', /'purple' is not an object colour/],
  ['a gray square on a dark blue background', /'gray' is not an object colour/],
  ['a red circle bouncing on a blue background', /'blue' is not a background/],
];

for (const [prompt, why] of untrained) {
  test(`'${prompt}': exit 2, the message says what the model can draw, nothing written`, async () => {
    const out = path.join(tempDir('trained-prompts'), 'never.mp4');
    const run = await render(['--prompt', prompt, '--out', out]);
    assert.is(run.code, 2, run.stderr);
    assert.match(run.stderr, /ERR_PROMPT|prompt '/);
    assert.match(run.stderr, why);
    assert.match(run.stderr, /red, green, blue, yellow, magenta, cyan, white/);
    assert.match(run.stderr, /circle, square, triangle/);
    assert.match(run.stderr, /dark green, dark blue, dark gray, dark purple, black/);
    assert.not.ok(fs.existsSync(out));
  });
}

test("the default prompt renders with the default configuration and every preset", async () => {
  const dir = tempDir('trained-prompts-ok');
  const presets = fs.readdirSync(path.join(root, 'configs/presets')).filter((f) => f.endsWith('.yaml'));
  const configs = [path.join(root, 'configs/default.yaml'), ...presets.map((f) => path.join(root, 'configs/presets', f))];
  for (const config of configs) {
    const out = path.join(dir, `${path.basename(config, '.yaml')}.mp4`);
    const run = await render(['--config', config, '--out', out]);
    assert.is(run.code, 0, `${config}: ${run.stderr}`);
    assert.ok(fs.statSync(out).size > 0);
  }
});

test.run();
