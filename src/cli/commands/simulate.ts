/**
 * `sinkstream simulate`: runs the scheduler's deterministic scenarios (steady load, a burst of new
 * streams, a device that slows down, overload, priorities, the pipeline at 1/2/4 GPUs) on a virtual
 * clock with a simulated engine, and prints their outcomes as a table, or with --json one object
 * `{ scenarios: [...] }`. The `scheduler:` section of the configuration (--config, --set) applies.
 */
import type { Command } from 'commander';
import { SinkstreamError } from '../../errors.js';
import { addConfigOptions, configFromOptions, type ConfigOptionValues } from '../config-options.js';
import { runScenarios, scenarioNames } from '../../../scheduler/simulate.js';
import { formatScenarioTable } from '../../../scheduler/report.js';

interface SimulateOptions extends ConfigOptionValues {
  json?: boolean;
  scenario: string[];
  streams?: boolean;
}

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('simulate')
      .description('run the scheduler on simulated devices: steady load, burst, slow-down, overload, pipeline')
      .option('--json', 'print one JSON object with a `scenarios` array')
      .option('--scenario <name>', `run only this scenario (repeatable; one of: ${scenarioNames().join(', ')})`, (v: string, p: string[]) => [...p, v], [] as string[])
      .option('--streams', 'include per-stream metrics (with --json)'),
  ).action((options: SimulateOptions) => {
    const known = scenarioNames();
    const names = options.scenario.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    for (const name of names) {
      if (!known.includes(name)) throw new SinkstreamError('ERR_ARGUMENT', `--scenario ${name}: no such scenario; expected one of ${known.join(', ')}`);
    }
    const config = configFromOptions(options);
    const report = runScenarios({ names, config: config.scheduler, perStream: options.streams === true });
    process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatScenarioTable(report.scenarios));
  });
}
