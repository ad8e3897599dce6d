/** `sinkstream check-config [FILE]`: validates a configuration and prints the complete result. */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfig } from '../../config/load.js';

export function register(program: Command): void {
  program
    .command('check-config')
    .argument('[file]', 'YAML configuration (default: configs/default.yaml)')
    .option('-s, --set <key=value>', 'override a key (repeatable)', (v: string, p: string[]) => [...p, v], [] as string[])
    .option('-q, --quiet', 'print nothing when valid')
    .description('validate a configuration against the schema and print it with every default filled in')
    .action((file: string | undefined, options: { set: string[]; quiet?: boolean }) => {
      const config = loadConfig({ file, set: options.set });
      if (!options.quiet) process.stdout.write(stringify(config));
    });
}
