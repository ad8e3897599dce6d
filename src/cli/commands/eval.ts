/** `sinkstream eval`: the long-horizon evaluation of the cache-policy presets (docs/eval/README.md). */
import type { Command } from 'commander';
import path from 'node:path';
import { addConfigOptions, type ConfigOptionValues } from '../config-options.js';
import { SinkstreamError } from '../../errors.js';
import { DEFAULT_PROMPT_COUNT, DEFAULT_PROMPT_SET, DEFAULT_SEEDS, listPresets, evalPrimes, presetOfBaseCache, promptsOf, runEval } from '../../eval/run-eval.js';
import { buildReport, markdownTable, targetsTable, writeReport } from '../../eval/report.js';
import { PROMPT_SETS, type PromptSet } from '../../eval/prompt-sets.js';

interface EvalCommandOptions extends ConfigOptionValues {
  seconds: string;
  policies?: string;
  prompts?: string;
  promptSet: string;
  promptCount: string;
  seeds?: string;
  jobs: string;
  out: string;
  json: boolean;
  /** Undefined unless --prime or --no-prime is given. */
  prime?: boolean;
}

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('eval')
      .description('render every cache-policy preset for a fixed set of prompts and measure each second against the ground truth')
      .option('--seconds <n>', 'seconds of video per prompt and seed', '60')
      .option('--policies <a,b>', `presets from configs/presets (default: all: ${listPresets().join(', ')})`)
      .option('--prompts <p1|p2>', 'prompts separated by | (replaces --prompt-set)')
      .option('--prompt-set <name>', `${PROMPT_SETS.join(' | ')}: captions training never saw (crc32 % 8 == 0), drawn with 1, 2 and 3 objects in turn, or the committed run's three`, DEFAULT_PROMPT_SET)
      .option('--prompt-count <n>', 'held-out prompts to draw', String(DEFAULT_PROMPT_COUNT))
      .option('--seeds <a,b>', 'noise seeds', DEFAULT_SEEDS.join(','))
      .option('--jobs <n>', 'videos rendered at once, each with its own engine (the results are the same as with 1)', '1')
      .option('--out <dir>', 'output folder for results.md, results.json and the plots', 'docs/eval')
      .option('--prime', "give every video's first block from the ground truth (image-to-video style); default: as generation.opening says")
      .option('--no-prime', 'generate the first block from noise too; default: as generation.opening says')
      .option('--json', 'print the report as JSON instead of the table', false),
  ).action(async (options: EvalCommandOptions) => {
    const seconds = Number(options.seconds);
    if (!Number.isFinite(seconds) || seconds <= 0) throw new SinkstreamError('ERR_ARGUMENT', `--seconds ${options.seconds}: expected a positive number`);
    const seeds = options.seeds!.split(',').map((s) => {
      if (!/^\d+$/.test(s.trim())) throw new SinkstreamError('ERR_ARGUMENT', `--seeds ${options.seeds}: expected non-negative integers separated by commas`);
      return Number(s);
    });
    const policies = options.policies?.split(',').map((p) => p.trim()).filter(Boolean);
    if (!(PROMPT_SETS as readonly string[]).includes(options.promptSet)) {
      throw new SinkstreamError('ERR_ARGUMENT', `--prompt-set ${options.promptSet}: expected one of ${PROMPT_SETS.join(', ')}`);
    }
    const promptSet = options.promptSet as PromptSet;
    const promptCount = Number(options.promptCount);
    if (!Number.isInteger(promptCount) || promptCount < 1) throw new SinkstreamError('ERR_ARGUMENT', `--prompt-count ${options.promptCount}: expected a positive integer`);
    const jobs = Number(options.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) throw new SinkstreamError('ERR_ARGUMENT', `--jobs ${options.jobs}: expected a positive integer`);
    const explicit = options.prompts?.split('|').map((p) => p.trim()).filter(Boolean);
    const prompts = explicit ?? promptsOf(promptSet, promptCount);
    const promptSource = explicit ? 'given with --prompts' : promptSet === 'fixed' ? 'fixed (the committed demo-model run\'s three; trained-on captions)' : `held-out (${promptCount} drawn; crc32(caption) % 8 == 0, never trained on)`;
    const prime = evalPrimes({ configFile: options.config, set: options.set, prime: options.prime });
    const quiet = options.json || !process.stderr.isTTY;
    const results = await runEval({
      configFile: options.config,
      set: options.set,
      policies,
      prompts,
      seeds,
      seconds,
      prime,
      jobs,
      onProgress: quiet ? undefined : (e) => process.stderr.write(`\r${e.policy}: ${e.prompt.slice(0, 40)}… seed ${e.seed}: ${e.second}/${e.seconds} s   `),
    });
    if (!quiet) process.stderr.write('\n');
    const report = buildReport(results, seconds);
    const baseCachePreset = presetOfBaseCache({ configFile: options.config, set: options.set });
    const outDir = path.resolve(options.out);
    writeReport(report, results, outDir, {
      seconds,
      'prompt set': promptSource,
      prompts,
      seeds,
      primed: prime ? 'first block given from the ground truth (image-to-video style)' : 'no (generated from noise)',
      config: options.config ?? 'configs/default.yaml',
      overrides: options.set.length ? options.set : 'none',
    }, baseCachePreset);
    if (options.json) process.stdout.write(`${JSON.stringify({ promptSet: promptSource, baseCachePreset: baseCachePreset ?? null, ...report }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`);
    else process.stdout.write(`Prompt set: ${promptSource}.\n\n${markdownTable(report)}\n${targetsTable(report, baseCachePreset)}\nwritten to ${outDir}\n`);
  });
}
