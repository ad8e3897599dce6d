/**
 * Does one engine make the same video as another? Generates the same clip (same configuration, seed
 * and prompt) with engine A and engine B through the library's generator, block by block exactly as
 * `sinkstream render` does (createGenerator + offlineBlocks), and compares the decoded RGB24 frames:
 * per block and over the clip, the largest and the mean absolute byte difference and the PSNR (dB).
 * It also compares the block latents the engines made (the clean latent each block's clean pass
 * caches): the relative L2 error |A - B| / |A| per block, and its mean over the last 20 blocks. With
 * `decoder.kind: none` only the latents are compared. So A and B may also differ in a cache key
 * (e.g. `--b cache.sparse.stride=3`: sparse attention against dense). It prints what it measured; it
 * has no expected figure of its own.
 *
 *   node --import tsx tools/bench/engine-video-diff.ts [--config FILE] [--set key=value ...]
 *        [--a key=value ...] [--b key=value ...] [--blocks 20] [--seed N] [--prompt TEXT] [--json]
 *        [--save FILE] [--against FILE]
 *
 *   --set          overrides for both engines (the CLI's --set); --a / --b only for A / B, applied after
 *   --save FILE    also write A's frames (one JSON header line, then the raw RGB24 frames)
 *   --against FILE take A's frames from such a file instead of running A (another machine's reference);
 *                  B's configuration must then match the saved one in everything but engine, output,
 *                  serve and scheduler, and --blocks defaults to the saved count
 *   --json         one more line: the figures as JSON (PSNR null where the frames are identical or absent)
 *   (a --save file holds frames only: against one, the latents are not compared)
 *
 * e.g. on a GPU machine: --a engine.name=ort --b engine.name=native --b engine.dtype=float16
 * Exit status: 0 measured (whatever the figures), 2 bad arguments or configuration, 1 a runtime failure.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, parseOverride, projectRoot } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { exitStatusFor, isSinkstreamError, SinkstreamError } from '../../src/errors.js';
import { createGenerator } from '../../src/loop/generator.js';
import { createEngine } from '../../src/engine/create-engine.js';
import { DelegatingEngine } from '../../src/engine/delegating-engine.js';
import type { Engine, ForwardRequest, ForwardResult } from '../../src/engine/types.js';
import { offlineBlocks } from '../../src/realtime/block-source.js';

/** Difference of two equally long byte sequences (frames laid end to end). */
export interface Difference {
  /** Largest |a - b| over every byte. */
  maxAbs: number;
  /** Mean |a - b| over every byte. */
  meanAbs: number;
  /** 10 log10(255² / mean squared difference); Infinity where the bytes are identical. */
  psnrDb: number;
  bytes: number;
}

/** Running sums, so that blocks and the whole clip are measured in one pass. */
export class DifferenceSum {
  private max = 0;
  private abs = 0;
  private sq = 0;
  private n = 0;

  add(a: Uint8Array, b: Uint8Array): this {
    if (a.length !== b.length) throw new SinkstreamError('ERR_ENGINE', `frames of ${a.length} and ${b.length} bytes cannot be compared`);
    let max = this.max;
    let abs = 0;
    let sq = 0;
    for (let i = 0; i < a.length; i++) {
      const d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
      if (d > max) max = d;
      abs += d;
      sq += d * d;
    }
    this.max = max;
    this.abs += abs;
    this.sq += sq;
    this.n += a.length;
    return this;
  }

  merge(other: DifferenceSum): this {
    this.max = Math.max(this.max, other.max);
    this.abs += other.abs;
    this.sq += other.sq;
    this.n += other.n;
    return this;
  }

  result(): Difference {
    const n = Math.max(this.n, 1);
    const mse = this.sq / n;
    return { maxAbs: this.max, meanAbs: this.abs / n, psnrDb: mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse), bytes: this.n };
  }
}

export function frameDifference(a: readonly Uint8Array[], b: readonly Uint8Array[]): Difference {
  if (a.length !== b.length) throw new SinkstreamError('ERR_ENGINE', `${a.length} and ${b.length} frames cannot be compared`);
  const sum = new DifferenceSum();
  a.forEach((frame, i) => sum.add(frame, b[i]));
  return sum.result();
}

/** A rendered clip, block by block. */
export interface Clip {
  width: number;
  height: number;
  framesPerBlock: number;
  blocks: { steps: number; frames: Uint8Array[] }[];
  /** Each block's clean latent [C, F, H, W] (absent for a clip read from a --save file). */
  latents?: Float32Array[];
}

/** |a - b| / |a| over two latents (L2 norms); 0 where both are zero. */
export function relativeL2(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new SinkstreamError('ERR_ENGINE', `latents of ${a.length} and ${b.length} values cannot be compared`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    diff += d * d;
    norm += a[i] * a[i];
  }
  if (norm === 0) return diff === 0 ? 0 : Infinity;
  return Math.sqrt(diff / norm);
}

/**
 * An engine that copies the latent of every forward that keeps its block's K/V once `recording` is
 * on: the clean pass of each block, in order, whose input is the block's clean latent.
 */
class LatentRecorder extends DelegatingEngine {
  readonly latents: Float32Array[] = [];
  recording = false;

  override forward(request: ForwardRequest): Promise<ForwardResult> {
    if (this.recording && request.keepBlockKv) this.latents.push(request.latent.slice());
    return this.inner.forward(request);
  }
}

/** The header line of a --save file. */
export interface SavedHeader {
  format: 'sinkstream-rgb24';
  version: 1;
  width: number;
  height: number;
  /** Video frames in the file (the sum of blockFrames). */
  frames: number;
  /** Video frames of a block once the stream is under way. */
  framesPerBlock: number;
  blocks: number;
  /**
   * Video frames of each block (a streaming decoder's first block gives fewer). Absent in files
   * written before it existed: every block then holds framesPerBlock.
   */
  blockFrames?: number[];
  /** Denoising steps of each block (0: drawn, not generated). */
  blockSteps: number[];
  /** How the configuration was made: file (relative to the project where inside it) and overrides. */
  configFile: string;
  set: string[];
  /** The whole resolved configuration, paths inside the project relative to it. */
  config: unknown;
  engine: string;
  createdAt: string;
}

const FORMAT = 'sinkstream-rgb24';
/** Top-level sections that do not change the frames (engine: what is compared). */
const FRAME_NEUTRAL_SECTIONS = new Set(['engine', 'output', 'serve', 'scheduler']);

/** Absolute paths inside the project become relative to it, so two checkouts' configurations compare equal. */
function portable(value: unknown): unknown {
  if (typeof value === 'string') {
    return path.isAbsolute(value) && value.startsWith(projectRoot + path.sep) ? path.relative(projectRoot, value).split(path.sep).join('/') : value;
  }
  if (Array.isArray(value)) return value.map(portable);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, portable(v)]));
  return value;
}

/** Keys (a.b.c) whose values differ between two plain trees, skipping the frame-neutral top-level sections. */
function differingKeys(a: unknown, b: unknown, at: string[] = []): string[] {
  if (at.length === 1 && FRAME_NEUTRAL_SECTIONS.has(at[0])) return [];
  const plain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (plain(a) && plain(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => differingKeys(a[k], b[k], [...at, k]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at.join('.') || '(top level)'];
}

function valueAt(tree: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), tree);
}

function describeEngine(config: Config): string {
  const e = config.engine;
  const parts: string[] = [e.name];
  if (e.name === 'native') parts.push(`device ${e.device}`, e.dtype);
  else {
    parts.push(e.provider);
    if (e.provider === 'webgpu') parts.push(e.dtype);
    else parts.push(`threads ${e.threads || 'all'}`);
    if (e.stages > 1) parts.push(`${e.stages} stages`);
  }
  return parts.join(' ');
}

/**
 * Renders `blocks` blocks the way `sinkstream render` does (the generator at its configured steps,
 * through the render's block source) and hands each block to `onBlock` as it comes (no frames with
 * `decoder.kind: none`). Resolves to the blocks' clean latents, in order.
 */
export async function renderBlocks(
  config: Config,
  blocks: number,
  onBlock: (block: { index: number; steps: number; frames: Uint8Array[] }, generator: { width: number; height: number; framesPerBlock: number }) => void,
): Promise<Float32Array[]> {
  const engine = new LatentRecorder(await createEngine(config));
  try {
    const generator = await createGenerator(config, { engine });
    engine.recording = true; // after the warm-up's forwards
    try {
      const source = offlineBlocks(generator);
      for (let b = 0; b < blocks; b++) {
        const block = await source.next();
        if (!block) throw new SinkstreamError('ERR_ENGINE', `the generator stopped after ${b} blocks`);
        onBlock({ index: block.index, steps: block.steps, frames: block.frames }, generator);
      }
    } finally {
      await generator.close(); // drains the last block's clean pass
    }
  } finally {
    await engine.close();
  }
  if (engine.latents.length < blocks) throw new SinkstreamError('ERR_ENGINE', `${engine.latents.length} clean passes for ${blocks} blocks`);
  return engine.latents.slice(0, blocks);
}

export function writeSaved(
  file: string,
  clip: Clip,
  header: Omit<SavedHeader, 'format' | 'version' | 'width' | 'height' | 'frames' | 'framesPerBlock' | 'blocks' | 'blockFrames' | 'blockSteps' | 'createdAt'>,
): void {
  const frames = clip.blocks.flatMap((b) => b.frames);
  const full: SavedHeader = {
    format: FORMAT,
    version: 1,
    width: clip.width,
    height: clip.height,
    frames: frames.length,
    framesPerBlock: clip.framesPerBlock,
    blocks: clip.blocks.length,
    blockFrames: clip.blocks.map((b) => b.frames.length),
    blockSteps: clip.blocks.map((b) => b.steps),
    ...header,
    createdAt: new Date().toISOString(),
  };
  writeFileSync(file, Buffer.concat([Buffer.from(JSON.stringify(full) + '\n', 'utf8'), ...frames]));
}

export function readSaved(file: string): { header: SavedHeader; clip: Clip } {
  const bad = (why: string) => new SinkstreamError('ERR_ARGUMENT', `--against ${file}: ${why}`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw bad(`cannot read: ${(e as Error).message}`);
  }
  const eol = bytes.indexOf(0x0a);
  if (eol < 0) throw bad('no header line (not a file written by --save)');
  let header: SavedHeader;
  try {
    header = JSON.parse(bytes.subarray(0, eol).toString('utf8')) as SavedHeader;
  } catch {
    throw bad('the header line is not JSON (not a file written by --save)');
  }
  if (header.format !== FORMAT || header.version !== 1) throw bad(`format ${header.format} version ${header.version}, expected ${FORMAT} version 1`);
  const frameBytes = header.width * header.height * 3;
  const blockFrames = header.blockFrames ?? Array.from({ length: header.blocks }, () => header.framesPerBlock);
  const counted = blockFrames.reduce((a, b) => a + b, 0);
  if (bytes.length - eol - 1 !== header.frames * frameBytes || blockFrames.length !== header.blocks || header.frames !== counted) {
    throw bad(`${bytes.length - eol - 1} bytes of frames, the header says ${header.frames} frames of ${header.width}x${header.height} in ${header.blocks} blocks (truncated?)`);
  }
  const frames = Array.from({ length: header.frames }, (_, i) => new Uint8Array(bytes.buffer, bytes.byteOffset + eol + 1 + i * frameBytes, frameBytes));
  const starts = blockFrames.map((_, b) => blockFrames.slice(0, b).reduce((a, n) => a + n, 0));
  const blocks = header.blockSteps.map((steps, b) => ({ steps, frames: frames.slice(starts[b], starts[b] + blockFrames[b]) }));
  return { header, clip: { width: header.width, height: header.height, framesPerBlock: header.framesPerBlock, blocks } };
}

interface Options {
  config?: string;
  set: string[];
  a: string[];
  b: string[];
  blocks?: string;
  seed?: string;
  prompt?: string;
  json?: boolean;
  save?: string;
  against?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function program(): Command {
  return new Command('engine-video-diff')
    .description("compare two engines' video: the same clip from engine A and engine B, byte differences and PSNR of the RGB frames")
    .addOption(new Option('-c, --config <file>', 'YAML configuration (default: configs/default.yaml)'))
    .addOption(new Option('-s, --set <key=value>', 'override for both engines (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--a <key=value>', "override for engine A only, e.g. engine.name=ort (repeatable)").argParser(collect).default([]))
    .addOption(new Option('--b <key=value>', 'override for engine B only, e.g. engine.name=native (repeatable)').argParser(collect).default([]))
    .option('--blocks <n>', 'blocks to render (default 20; with --against: the saved count)')
    .option('--seed <n>', 'noise seed (default: generation.seed)')
    .option('-p, --prompt <text>', 'prompt (default: generation.prompt)')
    .option('--json', 'also print the figures as one JSON line')
    .option('--save <file>', "write engine A's frames to FILE (JSON header line + raw RGB24) for --against elsewhere")
    .addOption(new Option('--against <file>', 'take engine A\'s frames from a --save file instead of running A').conflicts(['save', 'a']))
    .exitOverride()
    .showHelpAfterError('(--help for usage)');
}

function positiveInteger(flag: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n <= 0) throw new SinkstreamError('ERR_ARGUMENT', `${flag} ${raw}: expected a positive integer`);
  return n;
}

/** Loads the configuration of one side; bad overrides are reported under the flag that gave them. */
function sideConfig(label: 'A' | 'B', flag: string, options: Options, common: string[], own: string[]): Config {
  for (const assignment of own) {
    try {
      parseOverride(assignment);
    } catch (e) {
      throw isSinkstreamError(e) ? new SinkstreamError(e.code, e.message.replace(/^--set /, `${flag} `)) : e;
    }
  }
  try {
    const ownOverrides = own.map((assignment) => ({ assignment, origin: `${flag} ${assignment}` }));
    return loadConfig({ file: options.config, set: [...options.set, ...common, ...ownOverrides] });
  } catch (e) {
    throw isSinkstreamError(e) ? new SinkstreamError(e.code, `engine ${label} (${[flag, ...own].join(' ')}): ${e.message}`) : e;
  }
}

const fmt = {
  mean: (v: number) => v.toFixed(4),
  psnr: (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'inf'),
  latent: (v: number) => v.toExponential(3),
};

/** Blocks the latent error's headline mean covers: the last 20 of the rollout. */
export const LATENT_LAST_BLOCKS = 20;

export interface LatentErrorSummary {
  /** Mean relative L2 over the last `lastBlocks` blocks. */
  meanLast: number;
  lastBlocks: number;
  /** Mean over the blocks both sides generated (a drawn opening is the same on both). */
  meanGenerated: number;
  generatedBlocks: number;
  max: number;
}

export function summarizeLatentError(errors: readonly number[], generated: readonly boolean[]): LatentErrorSummary {
  const mean = (v: readonly number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0);
  const last = errors.slice(-LATENT_LAST_BLOCKS);
  const gen = errors.filter((_, i) => generated[i]);
  return { meanLast: mean(last), lastBlocks: last.length, meanGenerated: mean(gen), generatedBlocks: gen.length, max: Math.max(0, ...errors) };
}

const noFrames = { maxAbs: null, meanAbs: null, psnrDb: null };

function frames(clip: Clip): number {
  return clip.blocks.reduce((n, b) => n + b.frames.length, 0);
}

function describeDifference(d: Difference): string {
  return `max ${d.maxAbs}, mean ${fmt.mean(d.meanAbs)}, PSNR ${fmt.psnr(d.psnrDb)} dB`;
}

const jsonDifference = (d: Difference) => ({ maxAbs: d.maxAbs, meanAbs: d.meanAbs, psnrDb: Number.isFinite(d.psnrDb) ? d.psnrDb : null });

/** The tool: returns the exit status (never calls process.exit). Output goes through `out` / `err`. */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const cli = program().configureOutput({ writeOut: out, writeErr: err });
  let options: Options;
  try {
    options = cli.parse(argv, { from: 'user' }).opts<Options>();
  } catch (e) {
    if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' || e.code === 'commander.help' ? 0 : 2; // commander printed why
    throw e;
  }
  try {
    return await compare(options, out, err);
  } catch (e) {
    err(`engine-video-diff: ${isSinkstreamError(e) ? `${e.message} [${e.code}]` : ((e as Error)?.stack ?? String(e))}\n`);
    return exitStatusFor(e);
  }
}

async function compare(options: Options, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const common: string[] = [];
  if (options.seed !== undefined) {
    if (!/^\d+$/.test(options.seed)) throw new SinkstreamError('ERR_ARGUMENT', `--seed ${options.seed}: expected a non-negative integer`);
    common.push(`generation.seed=${options.seed}`);
  }
  if (options.prompt !== undefined) common.push(`generation.prompt=${JSON.stringify(options.prompt)}`);
  let blocks = options.blocks === undefined ? undefined : positiveInteger('--blocks', options.blocks);
  if (options.save !== undefined) {
    const dir = path.dirname(path.resolve(options.save));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SinkstreamError('ERR_ARGUMENT', `--save ${options.save}: no directory ${dir}`);
  }
  loadConfig({ file: options.config, set: [...options.set, ...common] }); // --config and --set problems, named as such
  const configFile = options.config === undefined ? 'configs/default.yaml' : String(portable(path.resolve(options.config)));
  const configB = sideConfig('B', '--b', options, common, options.b);
  const saved = options.against === undefined ? null : readSaved(options.against);
  const configA = saved ? null : sideConfig('A', '--a', options, common, options.a);

  if (saved) {
    const differing = differingKeys(saved.header.config, portable(configB));
    if (differing.length) {
      const lines = differing.map((k) => `${k}: saved ${JSON.stringify(valueAt(saved.header.config, k))}, here ${JSON.stringify(valueAt(portable(configB), k))}`);
      throw new SinkstreamError(
        'ERR_ARGUMENT',
        `--against ${options.against}: the saved frames were made with another configuration (only engine, output, serve and scheduler may differ; ` +
          `it was ${saved.header.configFile} with ${saved.header.set.join(' ') || 'no overrides'}):\n  ${lines.join('\n  ')}`,
      );
    }
    if (blocks === undefined) blocks = saved.header.blocks;
    if (blocks > saved.header.blocks) throw new SinkstreamError('ERR_ARGUMENT', `--blocks ${blocks}: ${options.against} holds ${saved.header.blocks} blocks`);
  }
  blocks ??= 20;
  const runB = !(options.save !== undefined && options.b.length === 0);

  // Engine A: rendered here, or the saved reference.
  let clipA: Clip;
  let secondsA: number | null = null;
  const setA = [...options.set, ...common, ...options.a];
  if (saved) {
    clipA = { ...saved.clip, blocks: saved.clip.blocks.slice(0, blocks) };
  } else {
    const started = performance.now();
    const clip: Clip = { width: 0, height: 0, framesPerBlock: 0, blocks: [] };
    clip.latents = await renderBlocks(configA!, blocks, (block, g) => {
      Object.assign(clip, { width: g.width, height: g.height, framesPerBlock: g.framesPerBlock });
      clip.blocks.push({ steps: block.steps, frames: block.frames });
    });
    secondsA = (performance.now() - started) / 1000;
    clipA = clip;
    if (options.save !== undefined) {
      writeSaved(options.save, clipA, { configFile, set: setA, config: portable(configA), engine: describeEngine(configA!) });
      err(`engine-video-diff: wrote ${clipA.blocks.length} blocks of engine A (${describeEngine(configA!)}) to ${options.save}\n`);
    }
  }
  const nameA = saved ? `${saved.header.engine} (saved: ${options.against}, ${saved.header.createdAt})` : describeEngine(configA!);
  if (!runB) {
    out(`engine A: ${nameA}: ${clipA.blocks.length} blocks saved to ${options.save}; no --b given, nothing compared\n`);
    return 0;
  }

  // Engine B, compared block by block as it comes.
  const perBlock: { index: number; steps: number; stepsB: number; diff: DifferenceSum }[] = [];
  const started = performance.now();
  let sizeB = { width: 0, height: 0, framesPerBlock: 0 };
  const latentsB = await renderBlocks(configB, blocks, (block, g) => {
    sizeB = { width: g.width, height: g.height, framesPerBlock: g.framesPerBlock };
    if (g.width !== clipA.width || g.height !== clipA.height || block.frames.length !== clipA.blocks[block.index].frames.length) {
      throw new SinkstreamError(
        'ERR_ARGUMENT',
        `engine B makes ${block.frames.length} frames of ${g.width}x${g.height} per block, engine A ${clipA.blocks[block.index].frames.length} of ${clipA.width}x${clipA.height}`,
      );
    }
    const sum = new DifferenceSum();
    clipA.blocks[block.index].frames.forEach((f, i) => sum.add(f, block.frames[i]));
    perBlock.push({ index: block.index, steps: clipA.blocks[block.index].steps, stepsB: block.steps, diff: sum });
  });
  const secondsB = (performance.now() - started) / 1000;
  const latentsA = clipA.latents;
  const latentError = latentsA ? perBlock.map((b) => relativeL2(latentsA[b.index], latentsB[b.index])) : null;
  const hasFrames = frames(clipA) > 0;

  const overall = new DifferenceSum();
  const generated = new DifferenceSum();
  for (const b of perBlock) {
    overall.merge(b.diff);
    if (b.steps > 0 && b.stepsB > 0) generated.merge(b.diff);
  }
  const frameCount = frames(clipA);
  const rate = (s: number | null) => (s === null ? '' : `, ${((s * 1000) / blocks).toFixed(1)} ms/block incl. start`);
  out(`engine A: ${nameA}${rate(secondsA)}\n`);
  out(`engine B: ${describeEngine(configB)}${rate(secondsB)}\n`);
  const generationA = (configA ?? (saved!.header.config as Config)).generation;
  const either = (a: unknown, b: unknown) => (a === b ? String(b) : `A ${a} / B ${b}`);
  out(
    `clip: ${configFile}${[...options.set, ...common].length ? ` with ${[...options.set, ...common].join(' ')}` : ''}; ` +
      `seed ${either(generationA.seed, configB.generation.seed)}; prompt ${either(JSON.stringify(generationA.prompt), JSON.stringify(configB.generation.prompt))}; ${blocks} blocks, ${hasFrames ? `${frameCount} frames of ${sizeB.width}x${sizeB.height}` : 'no frames (decoder.kind none): latents only'}` +
      `${options.a.length ? `; A: ${options.a.join(' ')}` : ''}${options.b.length ? `; B: ${options.b.join(' ')}` : ''}\n`,
  );
  out('block  steps  max|A-B|  mean|A-B|  PSNR dB  latent |A-B|/|A|\n');
  perBlock.forEach((b, i) => {
    const d = b.diff.result();
    const steps = b.steps === b.stepsB ? String(b.steps) : `${b.steps}/${b.stepsB}`;
    const note = b.steps === 0 && b.stepsB === 0 ? '  (drawn opening: not from the engine)' : '';
    const pixels = hasFrames ? [String(d.maxAbs).padStart(8), fmt.mean(d.meanAbs).padStart(9), fmt.psnr(d.psnrDb).padStart(7)] : ['-'.padStart(8), '-'.padStart(9), '-'.padStart(7)];
    const latent = latentError ? fmt.latent(latentError[i]) : '-';
    out(`${String(b.index).padStart(5)}  ${steps.padStart(5)}  ${pixels.join('  ')}  ${latent.padStart(16)}${note}\n`);
  });
  const all = overall.result();
  const gen = generated.result();
  const generatedBlocks = perBlock.filter((b) => b.steps > 0 && b.stepsB > 0).length;
  if (hasFrames) {
    out(`all ${perBlock.length} blocks: ${describeDifference(all)}\n`);
    if (generatedBlocks !== perBlock.length) out(`generated blocks only (${generatedBlocks}): ${generatedBlocks ? describeDifference(gen) : '-'}\n`);
  }
  const latentSummary = latentError ? summarizeLatentError(latentError, perBlock.map((b) => b.steps > 0 && b.stepsB > 0)) : null;
  if (latentSummary) {
    out(
      `latent |A-B|/|A|: mean of the last ${latentSummary.lastBlocks} blocks ${fmt.latent(latentSummary.meanLast)}, ` +
        `of the ${latentSummary.generatedBlocks} generated blocks ${fmt.latent(latentSummary.meanGenerated)}, largest ${fmt.latent(latentSummary.max)}\n`,
    );
  } else out('latent |A-B|/|A|: - (engine A read from a --save file, which holds frames only)\n');
  if (options.json) {
    out(
      JSON.stringify({
        a: saved ? { engine: saved.header.engine, saved: options.against, set: saved.header.set } : { engine: describeEngine(configA!), set: setA, seconds: secondsA },
        b: { engine: describeEngine(configB), set: [...options.set, ...common, ...options.b], seconds: secondsB },
        config: configFile,
        seed: { a: generationA.seed, b: configB.generation.seed },
        prompt: { a: generationA.prompt, b: configB.generation.prompt },
        width: sizeB.width,
        height: sizeB.height,
        framesPerBlock: sizeB.framesPerBlock,
        blocks: perBlock.map((b, i) => ({ index: b.index, steps: b.steps, ...(hasFrames ? jsonDifference(b.diff.result()) : noFrames), latentRelL2: latentError ? latentError[i] : null })),
        overall: hasFrames ? jsonDifference(all) : null,
        generated: hasFrames && generatedBlocks ? jsonDifference(gen) : null,
        latent: latentSummary,
      }) + '\n',
    );
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
