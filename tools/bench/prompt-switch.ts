/**
 * Does a prompt switch bring the new prompt's objects? Renders with the library API (default config,
 * demo model) and counts, in the last frame of every 5th block, the pixels near each colour:
 * - switch: P1 for 6 blocks, then setPrompt(P2) (LongLive KV re-cache);
 * - switch-no-recache: the same with the re-cache left out (the generator's private switchPrompt
 *   replaced by the new cross-attention alone; an experiment, not a supported setting);
 * - fresh-P2: P2 from the start (its objects drawn by the scene opening);
 * - fresh-P2-noise: P2 from the start with generation.opening=noise (nothing drawn).
 *
 *   node --import tsx tools/bench/prompt-switch.ts [blocksAfterSwitch=110] [modes]
 */
import { loadConfig } from '../../src/config/load.js';
import { createGenerator } from '../../src/loop/generator.js';
const P1 = 'a red circle and a blue square bouncing on a dark green background';
const P2 = 'a yellow triangle bouncing on a black background';
const palette = { red: [230, 40, 40], blue: [40, 90, 245], yellow: [245, 225, 40], green_bg: [25, 80, 40], black_bg: [10, 10, 10] };
function census(f: Uint8Array): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(Object.keys(palette).map((k) => [k, 0]));
  for (let i = 0; i < f.length; i += 3) {
    let best = ''; let bd = 1e9;
    for (const [k, c] of Object.entries(palette)) { const d = (f[i] - c[0]) ** 2 + (f[i + 1] - c[1]) ** 2 + (f[i + 2] - c[2]) ** 2; if (d < bd) { bd = d; best = k; } }
    if (bd < 70 ** 2) out[best]++;
  }
  return out;
}
type Mode = 'switch' | 'switch-no-recache' | 'fresh-P2' | 'fresh-P2-noise';
async function run(mode: Mode, before: number, after: number) {
  const prompt = mode.startsWith('fresh') ? P2 : P1;
  const config = loadConfig({ set: [`generation.prompt=${prompt}`, ...(mode === 'fresh-P2-noise' ? ['generation.opening=noise'] : [])] });
  const g = await createGenerator(config);
  if (mode === 'switch-no-recache') {
    (g as unknown as { switchPrompt: unknown }).switchPrompt = async function (this: any, { prompt, context }: { prompt: string; context: Float32Array }) {
      this.nextPrompt = null;
      await this.engine.setPrompt(context); // the new cross-attention only; the cached K/V stay as they were
      this.config = { ...this.config, generation: { ...this.config.generation, prompt } };
    };
  }
  const rows: string[] = [];
  const total = before + after;
  for (let b = 0; b < total; b++) {
    if (b === before && mode.startsWith('switch')) await g.setPrompt(P2);
    const block = await g.next();
    if (b % 5 === 0 || b === before || b === before + 1 || b === before + 2) {
      const c = census(block.frames[block.frames.length - 1]);
      rows.push(`  block ${String(b).padStart(3)}${b >= before && mode.startsWith('switch') ? '*' : ' '} ` + Object.entries(c).map(([k, v]) => `${k} ${String(v).padStart(4)}`).join('  '));
    }
  }
  await g.close();
  console.log(`${mode} (${mode.startsWith('fresh') ? P2 : `${P1} -> at block ${before}: ${P2}`}), pixels of 4096 near each colour, last frame of the block:\n${rows.join('\n')}`);
}
const before = 6, after = Number(process.argv[2] ?? 110);
for (const m of (process.argv[3] ?? 'switch,switch-no-recache,fresh-P2,fresh-P2-noise').split(',') as Mode[]) await run(m, before, after);
