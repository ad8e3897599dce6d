/**
 * The `sinkstream` command. Exit status: 0 success, 2 bad input (arguments, configuration, model
 * files), 1 runtime failure. Each command lives in src/cli/commands/<name>.ts and exports `register`.
 */
import { Command, CommanderError } from 'commander';
import { exitStatusFor, isSinkstreamError } from '../errors.js';
import { register as registerRender } from './commands/render.js';
import { register as registerBench } from './commands/bench.js';
import { register as registerCheckConfig } from './commands/check-config.js';
import { register as registerConvert } from './commands/convert.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerSimulate } from './commands/simulate.js';

type Register = (program: Command) => void;

/** Commands owned by other parts of the project; each file exports `register`. */
const OPTIONAL_COMMANDS = ['eval'] as const;

async function loadOptionalCommands(): Promise<Register[]> {
  const out: Register[] = [];
  for (const name of OPTIONAL_COMMANDS) {
    try {
      const mod = (await import(`./commands/${name}.js`)) as { register: Register };
      out.push(mod.register);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ERR_MODULE_NOT_FOUND') throw e;
    }
  }
  return out;
}

export async function buildProgram(): Promise<Command> {
  const program = new Command('sinkstream')
    .description('streaming video diffusion: block-causal transformers with attention-sink KV caches')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [registerRender, registerServe, registerBench, registerSimulate, registerCheckConfig, registerConvert, ...(await loadOptionalCommands())]) {
    register(program);
  }
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI and returns the exit status (never calls process.exit itself). */
export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2; // commander already printed the message
    }
    if (isSinkstreamError(e)) {
      process.stderr.write(`sinkstream: ${e.message} [${e.code}]\n`);
    } else {
      process.stderr.write(`sinkstream: ${(e as Error)?.stack ?? String(e)}\n`);
    }
    return exitStatusFor(e);
  }
}
