/** Small statistics helpers for measurements. The quantile is the scheduler's own (scheduler/ imports nothing from src/). */
import { quantile } from '../../scheduler/stats.js';

export { quantile };

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** The last `size` samples pushed (a ring: the oldest is overwritten), in no particular order. */
export class RecentSamples {
  private readonly values: number[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  push(v: number): void {
    if (this.values.length < this.size) this.values.push(v);
    else this.values[this.next] = v;
    this.next = (this.next + 1) % this.size;
  }
  all(): readonly number[] {
    return this.values;
  }
}
