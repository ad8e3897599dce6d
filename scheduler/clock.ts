/** Clocks for the scheduler. It never reads time itself: the caller injects one of these. */
import type { Clock } from './types.js';

/** A clock that moves only when told (simulations, tests). */
export class VirtualClock implements Clock {
  constructor(private time = 0) {}
  now(): number {
    return this.time;
  }
  /** Moves to `t`; time never goes back. */
  set(t: number): void {
    if (t < this.time) throw new RangeError(`VirtualClock: cannot go back from ${this.time} to ${t}`);
    this.time = t;
  }
  advance(ms: number): void {
    this.set(this.time + ms);
  }
}

/** Wall time for the real runtime: milliseconds from `performance.now()`. */
export const monotonicClock: Clock = { now: () => performance.now() };
