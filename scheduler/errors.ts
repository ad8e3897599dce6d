/**
 * A malformed argument given to the scheduler (a spec, a device, an id it does not know). The code is
 * the project's bad-input code, so the CLI exits with status 2 on it, as on any bad input.
 */
export class SchedulerError extends Error {
  readonly code = 'ERR_ARGUMENT' as const;
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerError';
  }
}
