/**
 * Can one device meet every deadline? The processor-demand test of EDF scheduling.
 *
 * Each stream on a device is a periodic load: a block is released every `periodMs` (the video frames
 * of a block at the stream's rate), needs `costMs` of device time (its forwards and decode) and is due
 * `deadlineMs` after its release (the stream's planned start-up delay: the playout slot of its first
 * frame). Blocks are served earliest-deadline-first, one forward at a time, so a unit already running
 * can delay a more urgent block by at most `longestUnitMs` (the blocking term). The device keeps a
 * share `headroom` free, so it offers `capacity = 1 - headroom` of its time:
 *   feasible  <=>  U = sum(C/P) <= capacity  and  for every t: dbf(t) + blocking <= capacity * t,
 *   dbf(t) = sum over loads of max(0, floor((t - D) / P) + 1) * C.
 * Checking t at every absolute deadline D + kP up to the usual bound L suffices.
 */

export interface PeriodicLoad {
  id: string;
  periodMs: number;
  costMs: number;
  deadlineMs: number;
  longestUnitMs: number;
}

export type FeasibilityResult =
  | { feasible: true; utilisation: number }
  | {
      feasible: false;
      utilisation: number;
      reason: 'utilisation' | 'deadline';
      /** The interval length at which demand exceeds supply (deadline failures). */
      atMs?: number;
      demandMs?: number;
      detail: string;
    };

/** Most deadline points checked; beyond it the test answers "infeasible" (never optimistic). */
const MAX_POINTS = 20000;

export function utilisation(loads: readonly PeriodicLoad[]): number {
  return loads.reduce((u, l) => u + l.costMs / l.periodMs, 0);
}

export function edfFeasible(loads: readonly PeriodicLoad[], capacity: number): FeasibilityResult {
  const u = utilisation(loads);
  if (loads.length === 0) return { feasible: true, utilisation: 0 };
  if (u > capacity + 1e-12) {
    return {
      feasible: false,
      utilisation: u,
      reason: 'utilisation',
      detail: `needs ${fmt(u)} of the device, ${fmt(capacity)} allowed`,
    };
  }
  const blocking = Math.max(...loads.map((l) => l.longestUnitMs));
  const dMax = Math.max(...loads.map((l) => l.deadlineMs));
  // dbf(t) <= U t + sum (P - D) U, so demand + blocking can exceed capacity * t only for
  // t < (sum (P - D) U + blocking) / (capacity - U). With no spare capacity and a positive excess
  // the bound is infinite; the point cap below then answers conservatively.
  const excess = loads.reduce((s, l) => s + (l.periodMs - l.deadlineMs) * (l.costMs / l.periodMs), 0) + blocking;
  const spare = capacity - u;
  const bound = Math.max(dMax, excess <= 0 ? 0 : spare > 1e-12 ? excess / spare : Infinity);
  const points: number[] = [];
  for (const l of loads) {
    for (let t = l.deadlineMs; t <= bound; t += l.periodMs) {
      points.push(t);
      if (points.length > MAX_POINTS) {
        return { feasible: false, utilisation: u, reason: 'utilisation', detail: `needs ${fmt(u)} of the device: too close to ${fmt(capacity)} to prove deadlines` };
      }
    }
  }
  points.sort((a, b) => a - b);
  for (const t of points) {
    const demand = demandBound(loads, t) + blocking;
    if (demand > capacity * t + 1e-9) {
      return {
        feasible: false,
        utilisation: u,
        reason: 'deadline',
        atMs: t,
        demandMs: demand,
        detail: `needs ${Math.round(demand)} ms of work within ${Math.round(t)} ms (${Math.round(capacity * t)} ms available)`,
      };
    }
  }
  return { feasible: true, utilisation: u };
}

export function demandBound(loads: readonly PeriodicLoad[], t: number): number {
  let demand = 0;
  for (const l of loads) {
    if (t >= l.deadlineMs) demand += (Math.floor((t - l.deadlineMs) / l.periodMs + 1e-9) + 1) * l.costMs;
  }
  return demand;
}

function fmt(x: number): string {
  return x.toFixed(2);
}
