/**
 * A fixed-seed render of every preset in configs/presets/ through the library API, hashed block by
 * block: the reference that a refactor of the loop or the cache must reproduce byte for byte. Each
 * render runs the bundled demo model on one ONNX Runtime thread, switches the prompt twice (before
 * blocks 4 and 10: the LongLive re-cache, once after participative compression has run) and retunes
 * the cache once (a larger window before block 7).
 *
 * Rewrite the fixture (only when a change of the frames is intended):
 *   npx tsx test/loop/helpers/preset-frames.ts > test/loop/fixtures/preset-frames.json
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createGenerator, defaultConfigPath, loadConfig } from '../../../src/index.js';

export const BLOCKS = 14;
const SWITCHES: Record<number, string> = {
  4: 'a yellow triangle and a cyan circle bouncing on a dark blue background',
  10: 'a red circle and a blue square bouncing on a dark green background',
};
const RETUNE_AT = 7;

export interface BlockHashes {
  /** sha256 of the block's RGB24 frames, concatenated. */
  frames: string;
  /** sha256 of the block's cache view and query positions (JSON). */
  cache: string;
}

export const presetsDir = path.join(path.dirname(defaultConfigPath), 'presets');

export function presetNames(): string[] {
  return fs
    .readdirSync(presetsDir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''))
    .sort();
}

function sha256(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export async function renderPreset(name: string): Promise<BlockHashes[]> {
  const config = loadConfig({ file: path.join(presetsDir, `${name}.yaml`), set: ['engine.threads=1', 'generation.seed=5'] });
  const generator = await createGenerator(config);
  const out: BlockHashes[] = [];
  try {
    for (let b = 0; b < BLOCKS; b++) {
      if (SWITCHES[b]) await generator.setPrompt(SWITCHES[b]);
      if (b === RETUNE_AT) generator.retune({ window: generator.config.cache.window + 3 });
      const block = await generator.next();
      out.push({
        frames: sha256(...block.frames),
        cache: sha256(Buffer.from(JSON.stringify({ cache: block.cache, queryPositions: block.queryPositions }))),
      });
    }
  } finally {
    await generator.close();
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const all: Record<string, BlockHashes[]> = {};
  for (const name of presetNames()) all[name] = await renderPreset(name);
  process.stdout.write(JSON.stringify(all, null, 1) + '\n');
}
