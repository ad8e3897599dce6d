/** `sinkstream eval`: the long-horizon evaluation of the cache-policy presets (docs/eval/README.md). */
import type { Command } from 'commander';
import path from 'node:path';
import { addConfigOptions, type ConfigOptionValues } from '../config-options.js';
import { SinkstreamError } from '../../errors.js';
import { DEFAULT_PROMPTS, DEFAULT_SEEDS, listPresets, runEval } from '../../eval/run-eval.js';
import { buildReport, markdownTable, writeReport } from '../../eval/report.js';

interface EvalCommandOptions extends ConfigOptionValues {
  seconds: string;
  policies?: string;
  prompts?: string;
  seeds?: string;
  out: string;
  json: boolean;
  prime: boolean;
}

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('eval')
      .description('render every cache-policy preset for a fixed set of prompts and measure each second against the ground truth')
      .option('--seconds <n>', 'seconds of video per prompt and seed', '60')
      .option('--policies <a,b>', `presets from configs/presets (default: all: ${listPresets().join(', ')})`)
      .option('--prompts <p1|p2>', 'prompts separated by | (default: the fixed evaluation set)')
      .option('--seeds <a,b>', 'noise seeds', DEFAULT_SEEDS.join(','))
      .option('--out <dir>', 'output folder for results.md, results.json and the plots', 'docs/eval')
      .option('--no-prime', 'generate the first block too (the demo model cannot open a video: docs/demo-model.md)')
      .option('--json', 'print the report as JSON instead of the table', false),
  ).action(async (options: EvalCommandOptions) => {
    const seconds = Number(options.seconds);
    if (!Number.isFinite(seconds) || seconds <= 0) throw new SinkstreamError('ERR_ARGUMENT', `--seconds ${options.seconds}: expected a positive number`);
    const seeds = options.seeds!.split(',').map((s) => {
      if (!/^\d+$/.test(s.trim())) throw new SinkstreamError('ERR_ARGUMENT', `--seeds ${options.seeds}: expected non-negative integers separated by commas`);
      return Number(s);
    });
    const policies = options.policies?.split(',').map((p) => p.trim()).filter(Boolean);
    const prompts = options.prompts?.split('|').map((p) => p.trim()).filter(Boolean) ?? DEFAULT_PROMPTS;
    const quiet = options.json || !process.stderr.isTTY;
    const results = await runEval({
      configFile: options.config,
      set: options.set,
      policies,
      prompts,
      seeds,
      seconds,
      prime: options.prime,
      onProgress: quiet ? undefined : (e) => process.stderr.write(`\r${e.policy}: ${e.prompt.slice(0, 40)}… seed ${e.seed}: ${e.second}/${e.seconds} s   `),
    });
    if (!quiet) process.stderr.write('\n');
    const report = buildReport(results, seconds);
    const outDir = path.resolve(options.out);
    writeReport(report, results, outDir, {
      seconds,
      prompts,
      seeds,
      primed: options.prime ? 'first block given from the ground truth (image-to-video style)' : 'no (generated from noise)',
      config: options.config ?? 'configs/default.yaml',
      overrides: options.set.length ? options.set : 'none',
    });
    if (options.json) process.stdout.write(`${JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`);
    else process.stdout.write(`${markdownTable(report)}\nwritten to ${outDir}\n`);
  });
}
