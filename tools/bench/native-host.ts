/**
 * The host's turn between the native engine's calls, measured on the CPU (issue 18 item 1: Node = C). The stream runs
 * through createGenerator and NativeEngine exactly as `sinkstream bench` runs it (configs/wan-1.3b.yaml: 16 channels x
 * 3 frames x 60 x 104 latents, sink window 21 / sink 3, 4 steps + the clean pass), on the stand-in addon
 * (tools/stand-in/native-addon.ts) with its timeline on: each engine call settles on a later turn of the event
 * loop, as libuv hands back the real addon's work, and is recorded. The addon's own work is nil, so what is measured
 * is JavaScript's:
 * - idle ms per forward: the engine has no call in flight before each forward (since its previous call settled), the
 *   addon's idleMs on the GPU; the critical path, work overlapped with a call in flight excluded;
 * - turn ms per block: every gap between two engine calls of a block, the cache update's included;
 * - main-thread ms per forward: the stream's wall time / forwards (overlapped work included: what must fit under the
 *   GPU's forward time).
 *
 *   node --import tsx tools/bench/native-host.ts [--blocks 30] [--json] [--root DIR] [--set key=value ...]
 *   node --import tsx tools/bench/native-host.ts --ab DIR [--rounds 6] [--blocks 30]
 *
 * --set adds configuration overrides after the defaults above (e.g. cache.sparse.stride=3, engine.attention=fp8).
 * --root runs the sources of another checkout (its src/, with node_modules reachable from it, e.g. a symlink);
 * --ab alternates processes between this tree and DIR, round by round in alternating order, and prints the medians and
 * their ratios (DIR / this tree). A base to compare with (here 602ac89, before the fixes):
 *   mkdir /tmp/base && git archive 602ac89 src scheduler configs package.json tsconfig.json | tar -x -C /tmp/base
 *   ln -s "$PWD/node_modules" /tmp/base/node_modules
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { standInCalls, writeStandInAddon } from '../stand-in/native-addon.js';

interface Figures {
  blocks: number;
  forwards: number;
  idleMsPerForward: number;
  turnMsPerBlock: number;
  mainThreadMsPerForward: number;
  /** Median gap before each call of a block, by place: the cache update, the steps' forwards, the clean pass. */
  medianGapMs: Record<string, number>;
}

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(root: string, blocks: number, extraSet: string[]): Promise<Figures> {
  const addon = writeStandInAddon(fs.mkdtempSync(path.join(os.tmpdir(), 'native-host-')), { gpus: ['Stand-in H200'], attention: 'stand-in', timeline: true });
  process.env.SINKSTREAM_NATIVE_ADDON = addon.file;
  const load = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(root, file)).href) as Promise<T>;
  const { loadConfig } = await load<typeof import('../../src/config/load.js')>('src/config/load.ts');
  const { createGenerator } = await load<typeof import('../../src/loop/generator.js')>('src/loop/generator.ts');
  const config = loadConfig({
    file: path.join(here, 'configs/wan-1.3b.yaml'),
    set: ['engine.name=native', 'engine.dtype=float16', 'cache.policy=sink', 'cache.sink=3', 'decoder.kind=none', 'generation.opening=noise', ...extraSet],
  });
  const generator = await createGenerator(config);
  try {
    // Until the window is full (21 frames = 7 blocks): the late blocks' plans are the ones measured.
    for (let b = 0; b < 8; b++) await generator.next();
    const calls = standInCalls(addon);
    calls.splice(0);
    const t0 = performance.now();
    for (let b = 0; b < blocks; b++) await generator.next();
    const wall = performance.now() - t0;
    let idle = 0;
    let turns = 0;
    let forwards = 0;
    for (let i = 1; i < calls.length; i++) {
      const gap = calls[i].calledAt - calls[i - 1].settledAt;
      turns += gap;
      if (calls[i].call === 'forward') idle += gap;
    }
    for (const c of calls) if (c.call === 'forward') forwards++;
    // places: the update starts a block; its forwards follow (steps 1..n, then the clean pass of the block)
    const byPlace = new Map<string, number[]>();
    let place = 0;
    for (let i = 1; i < calls.length; i++) {
      const name = calls[i].call === 'updateCache' ? 'update' : calls[i].call === 'forward' ? `forward ${++place}` : calls[i].call;
      if (calls[i].call === 'updateCache') place = 0;
      byPlace.set(name, [...(byPlace.get(name) ?? []), calls[i].calledAt - calls[i - 1].settledAt]);
    }
    const medianGapMs = Object.fromEntries([...byPlace].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, median(v)]));
    return { blocks, forwards, idleMsPerForward: idle / forwards, turnMsPerBlock: turns / blocks, mainThreadMsPerForward: wall / forwards, medianGapMs };
  } finally {
    await generator.close();
  }
}

const show = (f: Figures): string =>
  `idle ${f.idleMsPerForward.toFixed(2)} ms a forward, turns ${f.turnMsPerBlock.toFixed(2)} ms a block, main thread ${f.mainThreadMsPerForward.toFixed(2)} ms a forward (${f.forwards} forwards, ${f.blocks} blocks); ` +
  `median gap before: ${Object.entries(f.medianGapMs).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`;

const blocks = Number(option('--blocks', '30'));
const extraSet = process.argv.flatMap((a, i) => (a === '--set' && i + 1 < process.argv.length ? [process.argv[i + 1]] : []));
const other = option('--ab', '');
if (other) {
  const rounds = Number(option('--rounds', '6'));
  const runs: Record<'here' | 'other', Figures[]> = { here: [], other: [] };
  for (let r = 0; r < rounds; r++) {
    const order: Array<'here' | 'other'> = r % 2 ? ['other', 'here'] : ['here', 'other'];
    for (const side of order) {
      const root = side === 'here' ? here : path.resolve(other);
      const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--root', root, '--blocks', String(blocks), '--json', ...extraSet.flatMap((kv) => ['--set', kv])], {
        encoding: 'utf8',
        cwd: here,
      });
      if (child.status !== 0) throw new Error(`${side} (${root}) failed: ${child.stderr}`);
      const f = JSON.parse(child.stdout.trim().split('\n').pop()!) as Figures;
      runs[side].push(f);
      console.log(`round ${r + 1} ${side === 'here' ? 'this tree' : other}: ${show(f)}`);
    }
  }
  const key = ['idleMsPerForward', 'turnMsPerBlock', 'mainThreadMsPerForward'] as const;
  for (const k of key) {
    const a = median(runs.here.map((f) => f[k]));
    const b = median(runs.other.map((f) => f[k]));
    console.log(`${k}: this tree ${a.toFixed(2)}, ${other} ${b.toFixed(2)} (medians of ${rounds}; ${other} / this tree = ${(b / a).toFixed(2)}x)`);
  }
} else {
  const f = await measure(path.resolve(option('--root', here)), blocks, extraSet);
  console.log(process.argv.includes('--json') ? JSON.stringify(f) : show(f));
}
