/**
 * The quality ladder: which rung (denoising steps, latent frames per block) each stream on a device
 * gets. Every stream starts at the top; while the device's deadline test fails, one stream moves one
 * rung down. Who moves: the lowest priority first; among equals, the one now at the highest rung
 * (so equals degrade evenly), then the latest admitted. The first assignment that passes is taken, so
 * each stream gets the highest rung that still lets every stream meet its deadlines.
 */
import { edfFeasible, type FeasibilityResult, type PeriodicLoad } from './feasibility.js';
import type { Rung } from './types.js';

/** Rungs from best to worst: for each step count (highest first), each block size in preference order. */
export function rungsFrom(stepLadder: readonly number[], blockFrames: readonly number[]): Rung[] {
  const steps = [...new Set(stepLadder)].sort((a, b) => b - a);
  const frames = [...new Set(blockFrames)];
  return steps.flatMap((s) => frames.map((f) => ({ steps: s, blockFrames: f })));
}

export interface LadderMember {
  id: string;
  priority: number;
  /** Admission order (later = larger). */
  order: number;
  rungs: readonly Rung[];
  /** The device load of this member at rung index r. */
  load(rung: number): PeriodicLoad;
}

export type Assignment =
  | { feasible: true; rungs: Map<string, number>; test: FeasibilityResult }
  | { feasible: false; rungs: Map<string, number>; test: Extract<FeasibilityResult, { feasible: false }> };

export function assignRungs(members: readonly LadderMember[], capacity: number): Assignment {
  const rungs = new Map(members.map((m) => [m.id, 0]));
  for (;;) {
    const test = edfFeasible(
      members.map((m) => m.load(rungs.get(m.id)!)),
      capacity,
    );
    if (test.feasible) return { feasible: true, rungs, test };
    const victim = nextToLower(members, rungs);
    if (!victim) return { feasible: false, rungs, test };
    rungs.set(victim.id, rungs.get(victim.id)! + 1);
  }
}

/** The member the ladder lowers next, or undefined when all are at their lowest rung. */
export function nextToLower(members: readonly LadderMember[], rungs: ReadonlyMap<string, number>): LadderMember | undefined {
  const candidates = members.filter((m) => rungs.get(m.id)! < m.rungs.length - 1);
  candidates.sort(
    (a, b) =>
      a.priority - b.priority ||
      rungs.get(a.id)! - rungs.get(b.id)! ||
      b.order - a.order ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  return candidates[0];
}
