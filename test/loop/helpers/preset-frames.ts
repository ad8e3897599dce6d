/**
 * A fixed-seed render of every preset in configs/presets/ through the library API, fingerprinted block
 * by block: the reference that a refactor of the loop or the cache must reproduce. Each render runs the
 * bundled demo model on one ONNX Runtime thread, switches the prompt twice (before blocks 4 and 10: the
 * LongLive re-cache, once after participative compression has run) and retunes the cache once (a larger
 * window before block 7).
 *
 * What the cache held and the query positions are hashed (exact on every machine). The frames are kept as
 * thumbnails (the mean of each 16x16-pixel cell and channel): ONNX Runtime picks its CPU kernels by the
 * processor's instruction set, and the same render came out in other bytes on an AVX2-only machine than where
 * the byte-hash fixture had been written (the cache hashes equal), while it stays within a level or so of the
 * same picture (a 2^-22 change of every weight moves no cell mean by more than 1.1 over the 14 blocks); a
 * change of what the cache keeps moves cell means by tens of levels.
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
  /** per frame of the block: the mean of each 16x16-pixel cell's R, G and B (4x4 cells, row by row), to 0.01. */
  thumbnails: number[][];
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

const CELL = 16;

/** The mean of each CELL x CELL cell's channels of an RGB24 frame of width x height pixels. */
export function thumbnail(frame: Uint8Array, width: number, height: number): number[] {
  const out: number[] = [];
  for (let cy = 0; cy < height / CELL; cy++) {
    for (let cx = 0; cx < width / CELL; cx++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let y = cy * CELL; y < (cy + 1) * CELL; y++) {
          for (let x = cx * CELL; x < (cx + 1) * CELL; x++) sum += frame[(y * width + x) * 3 + c];
        }
        out.push(Math.round((sum / (CELL * CELL)) * 100) / 100);
      }
    }
  }
  return out;
}

function sha256(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/**
 * The steps the fixture was written with (an 8-step opening, then 4 a block from pure noise, a prompt switch's block
 * too), whatever the default configuration's.
 */
const STEPS = ['generation.steps=[1000,750,500,250]', 'generation.openingSteps=[1000,875,750,625,500,375,250,125]', 'generation.blockStart=noise'];

export async function renderPreset(name: string): Promise<BlockHashes[]> {
  const config = loadConfig({ file: path.join(presetsDir, `${name}.yaml`), set: ['engine.threads=1', 'generation.seed=5', ...STEPS] });
  const generator = await createGenerator(config);
  const out: BlockHashes[] = [];
  try {
    for (let b = 0; b < BLOCKS; b++) {
      if (SWITCHES[b]) await generator.setPrompt(SWITCHES[b]);
      if (b === RETUNE_AT) generator.retune({ window: generator.config.cache.window + 3 });
      const block = await generator.next();
      out.push({
        thumbnails: block.frames.map((f) => thumbnail(f, generator.width, generator.height)),
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
  process.stdout.write(`${JSON.stringify(all)}\n`);
}
