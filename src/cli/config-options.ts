/** The options every command that reads a configuration shares: --config and repeatable --set. */
import { Option, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function addConfigOptions(command: Command): Command {
  return command
    .addOption(new Option('-c, --config <file>', 'YAML configuration (default: configs/default.yaml)'))
    .addOption(new Option('-s, --set <key=value>', 'override a configuration key, e.g. cache.window=12 (repeatable)').argParser(collect).default([]));
}

export interface ConfigOptionValues {
  config?: string;
  set: string[];
}

export function configFromOptions(options: ConfigOptionValues, extra: string[] = []): Config {
  return loadConfig({ file: options.config, set: [...options.set, ...extra] });
}
