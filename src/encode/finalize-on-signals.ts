/**
 * On SIGINT / SIGTERM, close an encoder (ffmpeg flushes what it holds and ends the file) before the
 * process exits with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM). A second signal
 * while closing is left to Node's default action, so a second Ctrl-C still quits at once.
 *
 * Ctrl-C in a terminal also reaches ffmpeg (same process group); ffmpeg then finishes the file by
 * itself and close() reports `interrupted`. Either way the file is complete.
 */
import os from 'node:os';

export interface Closable {
  close(): Promise<unknown>;
  readonly path?: string;
}

export interface FinalizeOnSignalsOptions {
  signals?: NodeJS.Signals[];
  /** Called with the exit status once the writer is closed (default: process.exit). */
  exit?: (status: number) => void;
  /** One line for the user (default: stderr). */
  log?: (line: string) => void;
}

/** Installs the handlers; returns a function that removes them (call it after a normal close). */
export function finalizeOnSignals(writer: Closable, options: FinalizeOnSignalsOptions = {}): () => void {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const exit = options.exit ?? ((status: number) => process.exit(status));
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const handlers = new Map<NodeJS.Signals, () => void>();

  const remove = () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    handlers.clear();
  };

  for (const signal of signals) {
    const handler = () => {
      remove();
      const status = 128 + (os.constants.signals[signal] ?? 0);
      const what = writer.path ?? 'the output';
      log(`${signal}: finishing ${what} (press Ctrl-C again to quit at once)`);
      writer.close().then(
        () => exit(status),
        (e: unknown) => {
          log(`could not finish ${what}: ${e instanceof Error ? e.message : String(e)}`);
          exit(status);
        },
      );
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  return remove;
}
