/**
 * Several streams generated at once in one process (the library API, one engine each, as `serve`
 * runs them): total frames per second over 100 blocks per stream after 5 warm-up blocks.
 *
 *   node --import tsx tools/bench/concurrent-streams.ts [--streams 2] [--set key=value ...]
 *
 * e.g. `--set engine.allowSpinning=true` against the default (false) shows what spin-waiting
 * ONNX Runtime threads cost when several engines share the cores.
 */
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';

const args = process.argv.slice(2);
const streams = Number(args[args.indexOf('--streams') + 1] || 2);
const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));
const blocks = 100;
const generators = await Promise.all(
  Array.from({ length: streams }, (_, i) => createGenerator(loadConfig({ set: ['generation.opening=noise', `generation.seed=${i}`, ...set] }))),
);
try {
  for (const g of generators) for (let b = 0; b < 5; b++) await g.next();
  const t0 = performance.now();
  let frames = 0;
  await Promise.all(
    generators.map(async (g) => {
      for (let b = 0; b < blocks; b++) {
        const block = await g.next(); // read `frames` after the await: the streams interleave
        frames += block.frames.length;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  console.log(`${streams} streams, ${set.join(' ') || 'default config'}: ${(frames / seconds).toFixed(1)} frames/s in all (${blocks} blocks each in ${seconds.toFixed(1)} s)`);
} finally {
  for (const g of generators) await g.close();
}
