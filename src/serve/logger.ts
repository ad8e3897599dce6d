/**
 * The server's log: pino, one JSON object per line (`time` ISO 8601, `level` by name, `msg`, and the
 * event's fields: `event`, `stream`, ...), or the same lines made readable for a person when the
 * output is a terminal. Events are named in docs/serving.md (*Logs*).
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: LogLevel;
  /** Human-readable lines instead of JSON (default: JSON). */
  pretty?: boolean;
  /** Where lines go (default: stderr, written synchronously so nothing is lost at exit). */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined, // no pid / hostname on every line: the container or unit names them
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.pretty ? prettyLines(destination) : destination,
  );
}

/** A logger that writes nothing (the server's default when none is given). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const COLOURS: Record<string, string> = { fatal: '35', error: '31', warn: '33', info: '32', debug: '36', trace: '90' };

/**
 * pino's JSON lines as `12:34:56.789 INFO  msg  key=value ...` (coloured levels), for a terminal.
 * A line that is not JSON is passed through.
 */
export function prettyLines(out: DestinationStream, colour = true): DestinationStream {
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { time, level, msg, ...fields } = entry;
      const clock = typeof time === 'string' ? time.slice(11, 23) : '';
      const name = String(level ?? '').toUpperCase().padEnd(5);
      const shown = colour && COLOURS[String(level)] ? `\x1b[${COLOURS[String(level)]}m${name}\x1b[0m` : name;
      const rest = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`)
        .join(' ');
      out.write(`${clock} ${shown} ${msg ?? ''}${rest ? `  ${rest}` : ''}\n`);
    },
  };
}
