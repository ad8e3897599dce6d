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

/** A key a command's own option sets, e.g. `{ assignment: 'output.path="a.mp4"', origin: '--out' }`. */
export interface OptionSetting {
  assignment: string;
  origin: string;
}

/** The configuration with --set overrides, then the command's own options (each named by its flag in errors). */
export function configFromOptions(options: ConfigOptionValues, extra: OptionSetting[] = []): Config {
  return loadConfig({ file: options.config, set: [...options.set, ...extra] });
}
