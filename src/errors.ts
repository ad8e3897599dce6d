/**
 * Errors with stable codes. Bad input (exit status 2) and runtime failures (exit status 1)
 * are told apart by the code (`isBadInput`: the codes in BAD_INPUT); the CLI maps them to exit statuses.
 */
import { SchedulerError } from '../scheduler/errors.js';

export type ErrorCode =
  | 'ERR_CONFIG_INVALID' // a configuration key has a wrong type, value or combination
  | 'ERR_CONFIG_FILE' // the configuration file cannot be read or parsed
  | 'ERR_ARGUMENT' // a command-line argument is wrong
  | 'ERR_MODEL_FILE' // a weights / text / model file is missing or malformed
  | 'ERR_MODEL_SHAPE' // a checkpoint tensor has the wrong shape, or a key is missing
  | 'ERR_PROMPT' // a prompt cannot be encoded (e.g. a word outside the vocabulary)
  | 'ERR_FFMPEG_MISSING' // no ffmpeg binary was found
  | 'ERR_ENCODER' // ffmpeg failed
  | 'ERR_ENGINE' // the engine failed at run time
  | 'ERR_ENGINE_UNAVAILABLE' // the chosen engine / provider cannot be loaded here
  | 'ERR_CAPACITY' // the scheduler cannot admit the work within its objectives (the reason says why)
  | 'ERR_CLOSED'; // an object was used after close()

const BAD_INPUT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_CONFIG_INVALID',
  'ERR_CONFIG_FILE',
  'ERR_ARGUMENT',
  'ERR_MODEL_FILE',
  'ERR_MODEL_SHAPE',
  'ERR_PROMPT',
  'ERR_ENGINE_UNAVAILABLE',
]);

export class SinkstreamError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkstreamError';
    this.code = code;
  }
  /** True when the user's input (arguments, configuration, files) is at fault: exit status 2. */
  get isBadInput(): boolean {
    return BAD_INPUT.has(this.code);
  }
}

export function isSinkstreamError(e: unknown): e is SinkstreamError {
  return e instanceof SinkstreamError;
}

/** The scheduler's own error (scheduler/ imports nothing from src/) as this project's, same code and message. */
export function fromSchedulerError(e: unknown): unknown {
  return e instanceof SchedulerError ? new SinkstreamError(e.code, e.message, { cause: e }) : e;
}

/** Exit status for an error thrown out of a command: 2 for bad input, 1 otherwise. */
export function exitStatusFor(e: unknown): 1 | 2 {
  const error = fromSchedulerError(e);
  return isSinkstreamError(error) && error.isBadInput ? 2 : 1;
}
