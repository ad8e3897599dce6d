/** The table `sinkstream simulate` prints: one row per scenario. */
import type { ScenarioResult } from './simulate.js';

const COLUMNS: Array<[string, (r: ScenarioResult) => string]> = [
  ['scenario', (r) => r.name],
  ['gpus', (r) => String(r.devices)],
  ['admitted', (r) => String(r.admitted)],
  ['refused', (r) => String(r.refused)],
  ['stopped', (r) => String(r.stopped)],
  ['missed', (r) => String(r.missedDeadlines)],
  ['frames', (r) => String(r.framesDelivered)],
  ['fps', (r) => r.fps.toFixed(1)],
  ['p50 ms', (r) => r.p50LatencyMs.toFixed(0)],
  ['p99 ms', (r) => r.p99LatencyMs.toFixed(0)],
  ['ttff ms', (r) => (r.maxTtffMs === null ? '-' : r.maxTtffMs.toFixed(0))],
  ['blocks by steps', (r) => Object.entries(r.blocksBySteps).sort((a, b) => Number(b[0]) - Number(a[0])).map(([s, n]) => `${s}:${n}`).join(' ') || '-'],
  ['lowered', (r) => String(r.stepsLowered)],
  ['batch', (r) => r.meanBatch.toFixed(2)],
  ['speedup', (r) => (r.speedup === undefined ? '-' : `${r.speedup.toFixed(2)}x`)],
];

export function formatScenarioTable(results: readonly ScenarioResult[]): string {
  const rows = [COLUMNS.map(([h]) => h), ...results.map((r) => COLUMNS.map(([, f]) => f(r)))];
  const widths = COLUMNS.map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 || c === 11 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  const notes = results.flatMap((r) => [
    ...r.refusals.map((x) => `${r.name}: refused ${x.streamId} at ${(x.atMs / 1000).toFixed(1)} s (${x.code}): ${x.reason}`),
    ...r.stops.map((x) => `${r.name}: stopped ${x.streamId}: ${x.reason}`),
  ]);
  return [...out, ...(notes.length ? ['', ...notes] : [])].join('\n') + '\n';
}
