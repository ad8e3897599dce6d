/** Small statistics helpers for measurements. The quantile is the scheduler's own (scheduler/ imports nothing from src/). */
import { quantile } from '../../scheduler/stats.js';

export { quantile };

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}
