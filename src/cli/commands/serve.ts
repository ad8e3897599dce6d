/** `sinkstream serve`: the live-generation server (viewer page, WebSocket streams, /metrics). */
import type { Command } from 'commander';
import { addConfigOptions, configFromOptions, type ConfigOptionValues, type OptionSetting } from '../config-options.js';
import { SinkstreamError } from '../../errors.js';
import { SinkstreamServer } from '../../serve/server.js';
import { TOKEN_ENV } from '../../serve/auth.js';

interface ServeOptions extends ConfigOptionValues {
  host?: string;
  port?: string;
  token?: string;
}

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('serve')
      .description('serve live generation: a viewer page, WebSocket streams, Prometheus /metrics')
      .option('--host <host>', 'address to listen on (default: serve.host, 127.0.0.1)')
      .option('--port <port>', 'port (default: serve.port, 8080; 0 = any free port)')
      .option('--token <token>', `token for creating and controlling streams (default: serve.token, else $${TOKEN_ENV})`),
  ).action(async (options: ServeOptions) => {
    const extra: OptionSetting[] = [];
    if (options.host !== undefined) extra.push({ assignment: `serve.host=${JSON.stringify(options.host)}`, origin: '--host' });
    if (options.port !== undefined) {
      if (!/^\d+$/.test(options.port) || Number(options.port) > 65535) {
        throw new SinkstreamError('ERR_ARGUMENT', `--port ${options.port}: expected an integer in 0..65535`);
      }
      extra.push({ assignment: `serve.port=${options.port}`, origin: '--port' });
    }
    if (options.token !== undefined) extra.push({ assignment: `serve.token=${JSON.stringify(options.token)}`, origin: '--token' });
    const config = configFromOptions(options, extra);
    const log = (line: string) => process.stderr.write(`sinkstream serve: ${line}\n`);
    const server = await SinkstreamServer.listen({ config, log });

    const out = process.stdout;
    out.write(`sinkstream serve: listening on ${server.url}\n`);
    if (server.token) {
      const from = options.token !== undefined ? '--token' : config.serve.token !== undefined ? 'serve.token' : TOKEN_ENV;
      out.write(`  open ${server.url}#token=${encodeURIComponent(server.token)} in a browser\n`);
      out.write(`  token (from ${from}): HTTP clients send 'Authorization: Bearer <token>'; WebSocket clients add ?token=<token> to /ws\n`);
    } else {
      out.write(`  open ${server.url} in a browser (loopback only, no token: set ${TOKEN_ENV} or --token to require one)\n`);
    }
    out.write(`  metrics: ${server.url}metrics    stop: Ctrl-C or SIGTERM (streams stop, recordings are finalized)\n`);

    const stop = (signal: NodeJS.Signals) => {
      log(`${signal}: stopping streams and finalizing recordings (again to quit at once)`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close(`server stopped (${signal})`);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    await server.closed;
    log('stopped');
  });
}
