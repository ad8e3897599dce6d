/**
 * `sinkstream serve`: the live-generation server (viewer page, WebSocket streams, /healthz, /readyz,
 * /metrics). Logs go to stderr: JSON lines, or readable ones on a terminal. The first SIGTERM or
 * SIGINT drains (serve.drainSeconds), a second one stops the streams at once; either way the
 * recordings are finalised and the process exits 0.
 */
import type { Command } from 'commander';
import { addConfigOptions, configFromOptions, type ConfigOptionValues, type OptionSetting } from '../config-options.js';
import { SinkstreamError } from '../../errors.js';
import { SinkstreamServer } from '../../serve/server.js';
import { TOKEN_ENV } from '../../serve/auth.js';
import { createLogger } from '../../serve/logger.js';

interface ServeOptions extends ConfigOptionValues {
  host?: string;
  port?: string;
  token?: string;
  logLevel?: string;
}

export function register(program: Command): void {
  addConfigOptions(
    program
      .command('serve')
      .description('serve live generation: a viewer page, WebSocket streams, Prometheus /metrics')
      .option('--host <host>', 'address to listen on (default: serve.host, 127.0.0.1)')
      .option('--port <port>', 'port (default: serve.port, 8080; 0 = any free port)')
      .option('--token <token>', `token for creating and controlling streams (default: serve.token, else $${TOKEN_ENV})`)
      .option('--log-level <level>', 'fatal, error, warn, info, debug (every request), trace or silent (default: serve.logLevel, info)'),
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
    if (options.logLevel !== undefined) extra.push({ assignment: `serve.logLevel=${JSON.stringify(options.logLevel)}`, origin: '--log-level' });
    const config = configFromOptions(options, extra);
    const logger = createLogger({ level: config.serve.logLevel, pretty: process.stderr.isTTY === true });
    const server = await SinkstreamServer.listen({ config, logger });

    const out = process.stdout;
    out.write(`sinkstream serve: listening on ${server.url}\n`);
    if (server.token) {
      const from = options.token !== undefined ? '--token' : config.serve.token !== undefined ? 'serve.token' : TOKEN_ENV;
      out.write(`  open ${server.url}#token=${encodeURIComponent(server.token)} in a browser\n`);
      out.write(`  token (from ${from}): HTTP clients send 'Authorization: Bearer <token>'; WebSocket clients add ?token=<token> to /ws\n`);
    } else {
      out.write(`  open ${server.url} in a browser (loopback only, no token: set ${TOKEN_ENV} or --token to require one)\n`);
    }
    out.write(`  metrics: ${server.url}metrics    health: ${server.url}healthz, ${server.url}readyz\n`);
    out.write(`  stop: Ctrl-C or SIGTERM drains (streams go on for up to ${config.serve.drainSeconds} s, serve.drainSeconds); again to stop at once\n`);

    let signals = 0;
    const stop = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        logger.info({ event: 'signal', signal }, `${signal}: draining (again to stop the streams at once)`);
        void server.drain();
      } else {
        logger.info({ event: 'signal', signal }, `${signal}: stopping the streams now, finalising recordings`);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void server.close(`server stopped (${signal})`);
      }
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    await server.closed;
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    logger.info({ event: 'stopped' }, 'stopped');
  });
}
