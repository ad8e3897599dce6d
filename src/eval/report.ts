/**
 * The evaluation's outputs: per policy, each metric averaged over prompts and seeds for every
 * second; a table of early vs late windows (markdown + JSON); the issue's targets per policy (met /
 * not met); one PNG per metric (a line per policy).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { linePlot } from './line-plot.js';
import { Canvas } from './png.js';
import { drawText } from './bitmap-font.js';
import { METRIC_KEYS, type MetricKey, type SecondMetrics } from './metrics.js';
import type { RunResult } from './run-eval.js';

export interface PolicySeries {
  policy: string;
  runs: number;
  generationFps: number;
  /** metric -> value per second (mean over runs, NaN where no run had a value). */
  perSecond: Record<MetricKey, number[]>;
}

export interface SummaryRow {
  policy: string;
  metric: MetricKey;
  early: number;
  late: number;
}

export interface TargetCheck {
  /** What is measured, e.g. 'colour fidelity late/early'. */
  name: string;
  /** The target, e.g. '>= 0.8'. */
  target: string;
  /** NaN when it could not be measured (counts as not met). */
  value: number;
  met: boolean;
}

export interface PolicyTargets {
  policy: string;
  /** Share of the policy's videos whose opening second shows every prompted colour (>= 0.8). */
  openingPresent: TargetCheck;
  /** Late colour fidelity / early (>= 0.8). */
  colourFidelity: TargetCheck;
  /** Late speed / the training data's mean speed (within 25% of 1). */
  speed: TargetCheck;
  /** Late border sharpness / early (>= 0.8). */
  borderSharpness: TargetCheck;
  allMet: boolean;
}

export interface EvalReport {
  seconds: number;
  /** Seconds of video in the early and in the late window (the targets' and the table's). */
  windowSeconds: number;
  /** How the windows were chosen, for the reader. */
  windowRule: string;
  /** First frame of the checked opening second: 0 from noise, the first generated frame when primed. */
  openingFromFrame: number;
  /** Frames in the checked opening second (fps, fewer in a shorter video). */
  openingFrames: number;
  policies: PolicySeries[];
  summary: SummaryRow[];
  targets: PolicyTargets[];
}

/** The targets of issue 16 the evaluation states. */
export const TARGETS = { openingPresentShare: 0.8, colourFidelityLateEarly: 0.8, speedTolerance: 0.25, borderSharpnessLateEarly: 0.8 } as const;

/** Early / late windows: the first and last 10 s; runs shorter than 20 s use their first and last quarter. */
export function evalWindow(secondsMeasured: number): { windowSeconds: number; windowRule: string } {
  if (secondsMeasured >= 20) return { windowSeconds: 10, windowRule: 'early = first 10 s, late = last 10 s' };
  const windowSeconds = Math.max(1, Math.floor(secondsMeasured / 4));
  return {
    windowSeconds,
    windowRule: `run shorter than 20 s: early = first quarter, late = last quarter (${windowSeconds} s each${secondsMeasured < 2 ? ': the same second' : ''})`,
  };
}

export const METRIC_INFO: Record<MetricKey, { title: string; unit: string; better: string }> = {
  colourFidelity: { title: 'colour fidelity', unit: 'share of prompted colours detected', better: 'higher' },
  objectCount: { title: 'objects detected', unit: 'objects', better: 'the prompt\'s count' },
  extraObjects: { title: 'unprompted objects', unit: 'objects', better: 'lower' },
  duplicates: { title: 'objects drawn twice', unit: 'extra copies of prompted objects per frame', better: 'lower (ground truth about 0)' },
  edgeContact: { title: 'objects at the edge', unit: 'share of prompted objects reaching the frame\'s edge', better: 'lower (ground truth about 0.03: at a bounce)' },
  speed: { title: 'motion', unit: 'pixels/frame', better: 'near the training speed' },
  speedRatio: { title: 'motion vs training', unit: 'speed / training mean', better: 'near 1' },
  positionError: { title: 'position error vs ground truth', unit: 'pixels', better: 'lower' },
  backgroundDrift: { title: 'background drift', unit: 'RGB distance', better: 'lower' },
  purity: { title: 'palette purity', unit: 'share of clean pixels', better: 'higher' },
  sharpness: { title: 'Laplacian sharpness', unit: 'Laplacian variance of luminance, whole frame', better: 'near ground truth' },
  borderSharpness: { title: 'border sharpness', unit: 'RGB gradient magnitude on prompted objects\' borders', better: 'as high late as early' },
  shapeMatch: { title: 'shape match', unit: 'IoU of prompted objects with their prompted shape (same area and centroid)', better: 'higher (ground truth about 0.9)' },
  shapeAccuracy: { title: 'shape accuracy', unit: 'share of prompted objects best matching their prompted shape', better: 'higher (ground truth 1)' },
  shapeSwapped: {
    title: 'another object\'s shape',
    unit: 'share of prompted objects best matching a shape the prompt gives another object (prompts whose objects differ in shape)',
    better: 'lower (ground truth 0)',
  },
};

function nanMean(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN;
}

export function buildReport(results: RunResult[], seconds: number): EvalReport {
  const policies = [...new Set(results.map((r) => r.policy))];
  const n = Math.max(0, ...results.map((r) => r.seconds.length));
  const { windowSeconds, windowRule } = evalWindow(n);
  const series: PolicySeries[] = policies.map((policy) => {
    const runs = results.filter((r) => r.policy === policy);
    const perSecond = {} as Record<MetricKey, number[]>;
    for (const key of METRIC_KEYS) {
      perSecond[key] = Array.from({ length: n }, (_, s) =>
        nanMean(runs.map((r) => r.seconds.find((row: SecondMetrics) => row.second === s)?.[key] ?? Number.NaN)),
      );
    }
    return { policy, runs: runs.length, generationFps: nanMean(runs.map((r) => r.generationFps)), perSecond };
  });
  const summary: SummaryRow[] = [];
  for (const s of series) {
    for (const metric of METRIC_KEYS) {
      const v = s.perSecond[metric];
      summary.push({ policy: s.policy, metric, early: nanMean(v.slice(0, windowSeconds)), late: nanMean(v.slice(Math.max(0, n - windowSeconds))) });
    }
  }
  const openingFromFrame = results[0]?.opening.fromFrame ?? 0;
  const openingFrames = Math.max(0, ...results.map((r) => r.opening.frames));
  const targets = series.map((s) => policyTargets(s.policy, results.filter((r) => r.policy === s.policy), summary));
  return { seconds, windowSeconds, windowRule, openingFromFrame, openingFrames, policies: series, summary, targets };
}

function check(name: string, target: string, value: number, met: (v: number) => boolean): TargetCheck {
  return { name, target, value, met: Number.isFinite(value) && met(value) };
}

export function policyTargets(policy: string, runs: readonly RunResult[], summary: readonly SummaryRow[]): PolicyTargets {
  const row = (metric: MetricKey): SummaryRow => summary.find((r) => r.policy === policy && r.metric === metric)!;
  const ratio = (metric: MetricKey): number => {
    const { early, late } = row(metric);
    return early > 0 ? late / early : Number.NaN;
  };
  const openingShare = runs.length ? runs.filter((r) => r.opening.present).length / runs.length : Number.NaN;
  const t = TARGETS;
  const openingPresent = check('opening present', `>= ${t.openingPresentShare} of videos`, openingShare, (v) => v >= t.openingPresentShare);
  const colourFidelity = check('colour fidelity late/early', `>= ${t.colourFidelityLateEarly}`, ratio('colourFidelity'), (v) => v >= t.colourFidelityLateEarly);
  const speed = check('speed late / training mean', `${1 - t.speedTolerance}..${1 + t.speedTolerance}`, row('speedRatio').late, (v) => Math.abs(v - 1) <= t.speedTolerance);
  const borderSharpness = check('border sharpness late/early', `>= ${t.borderSharpnessLateEarly}`, ratio('borderSharpness'), (v) => v >= t.borderSharpnessLateEarly);
  const allMet = [openingPresent, colourFidelity, speed, borderSharpness].every((c) => c.met);
  return { policy, openingPresent, colourFidelity, speed, borderSharpness, allMet };
}

const fmt = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/** One row per policy; early -> late per metric. */
export function markdownTable(report: EvalReport, metrics: readonly MetricKey[] = METRIC_KEYS): string {
  const n = report.windowSeconds;
  const head = ['policy', ...metrics.map((m) => `${METRIC_INFO[m].title}`), 'gen. fps'];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
  ];
  for (const s of report.policies) {
    const cells = metrics.map((m) => {
      const row = report.summary.find((r) => r.policy === s.policy && r.metric === m)!;
      const digits = m === 'sharpness' ? 0 : m === 'borderSharpness' ? 1 : 2;
      return `${fmt(row.early, digits)} → ${fmt(row.late, digits)}`;
    });
    lines.push(`| ${s.policy} | ${cells.join(' | ')} | ${fmt(s.generationFps, 1)} |`);
  }
  return `Each cell: mean over the first ${n} s → mean over the last ${n} s of ${report.seconds} s videos.\n\n${lines.join('\n')}\n`;
}

/** Minutes the issue asks one sink policy to hold the long-horizon targets for. */
const LONG_HORIZON_SECONDS = 300;

/** The targets block: per policy, each target's measured value and met / not met. */
export function targetsTable(report: EvalReport, baseCachePreset?: string): string {
  const cell = (c: TargetCheck): string => `${fmt(c.value)} ${c.met ? 'met' : 'not met'}`;
  const first = report.targets[0];
  const head = first
    ? ['policy', ...[first.openingPresent, first.colourFidelity, first.speed, first.borderSharpness].map((c) => `${c.name} (${c.target})`), 'all met']
    : ['policy'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const t of report.targets) {
    lines.push(`| ${t.policy} | ${[t.openingPresent, t.colourFidelity, t.speed, t.borderSharpness].map(cell).join(' | ')} | ${t.allMet ? 'yes' : 'no'} |`);
  }
  const from = report.openingFromFrame;
  const frames = `frames ${from}..${from + report.openingFrames - 1}`;
  const opening =
    from > 0
      ? `opening = the first generated second after the ${from} primed frames (${frames}), every prompted colour detected in at least half of them`
      : `opening = the first second of video (${frames}), every prompted colour detected in at least half of them`;
  const met = report.targets.filter((t) => t.colourFidelity.met && t.speed.met && t.borderSharpness.met).map((t) => t.policy);
  const horizon =
    report.seconds >= LONG_HORIZON_SECONDS
      ? `Policies holding colour fidelity, speed and border sharpness over ${report.seconds} s: ${met.length ? met.join(', ') : 'none'}.`
      : `The 5-minute target (one sink policy holds colour fidelity, speed and border sharpness for ${LONG_HORIZON_SECONDS} s) needs --seconds ${LONG_HORIZON_SECONDS}; these are ${report.seconds} s videos.`;
  const base = baseCachePreset
    ? `The base configuration's cache is the ${baseCachePreset} preset: its row is the targets' default configuration.`
    : 'No preset has the base configuration\'s cache: the targets\' default configuration is not among these rows.';
  return `Targets (issue 16): ${report.windowRule}; ${opening}.\n\n${lines.join('\n')}\n\n${base} ${horizon}\n`;
}

/** Rows = policies, columns = evenly spaced seconds of the first prompt and seed's video. */
export function filmstrip(results: RunResult[], frameSize: number, columns = 12): Buffer | null {
  const policies = [...new Set(results.map((r) => r.policy))];
  const first = results[0];
  if (!first || first.stills.length === 0) return null;
  const rows = policies.map((p) => results.find((r) => r.policy === p && r.prompt === first.prompt && r.seed === first.seed)!);
  const n = Math.min(columns, first.stills.length);
  const picks = Array.from({ length: n }, (_, i) => Math.round((i * (first.stills.length - 1)) / Math.max(1, n - 1)));
  const scale = 2;
  const cell = frameSize * scale + 4;
  const left = 150;
  const top = 24;
  const canvas = new Canvas(left + n * cell, top + rows.length * cell, [255, 255, 255]);
  drawText(canvas, 4, 6, `${first.prompt} (seed ${first.seed}); columns: second of video`, [0, 0, 0]);
  picks.forEach((second, j) => drawText(canvas, left + j * cell + 2, top - 10 + 0, `${second}s`, [0, 0, 0]));
  rows.forEach((run, i) => {
    drawText(canvas, 4, top + i * cell + cell / 2 - 4, run.policy.slice(0, 24), [0, 0, 0]);
    picks.forEach((second, j) => {
      const still = run.stills[second];
      if (!still) return;
      for (let y = 0; y < frameSize * scale; y++) {
        for (let x = 0; x < frameSize * scale; x++) {
          const src = (Math.floor(y / scale) * frameSize + Math.floor(x / scale)) * 3;
          canvas.set(left + j * cell + x, top + 2 + i * cell + y, [still[src], still[src + 1], still[src + 2]]);
        }
      }
    });
  });
  return canvas.toPng();
}

export function writeReport(report: EvalReport, results: RunResult[], outDir: string, meta: Record<string, unknown>, baseCachePreset?: string): string[] {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  const put = (name: string, data: string | Buffer): void => {
    const file = path.join(outDir, name);
    writeFileSync(file, data);
    written.push(file);
  };
  const clean = (v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? null : v);
  const runs = results.map(({ stills: _stills, ...rest }) => rest);
  put('results.json', `${JSON.stringify({ meta, report, runs }, (_k, v) => clean(v), 1)}\n`);
  const strip = filmstrip(results, Math.round(Math.sqrt((results[0]?.stills[0]?.length ?? 0) / 3)));
  if (strip) put('filmstrip.png', strip);
  const units = METRIC_KEYS.map((m) => `- **${METRIC_INFO[m].title}** (${m}): ${METRIC_INFO[m].unit}; better: ${METRIC_INFO[m].better}`).join('\n');
  put(
    'results.md',
    `# Evaluation results (generated by \`sinkstream eval\`)\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${Array.isArray(v) ? v.join('; ') : String(v)}`).join('\n')}\n\n` +
      `## Targets\n\n${targetsTable(report, baseCachePreset)}\n## Metrics, early → late\n\n${markdownTable(report)}\nMetrics:\n${units}\n`,
  );
  for (const metric of METRIC_KEYS) {
    const info = METRIC_INFO[metric];
    const png = linePlot(
      report.policies.map((s) => ({ label: s.policy, points: s.perSecond[metric].map((y, i) => [i + 0.5, y] as [number, number]) })),
      {
        title: `${info.title} per second of video (mean over prompts and seeds)`,
        xLabel: 'second of video',
        yLabel: info.unit,
        yRange: ['colourFidelity', 'purity', 'shapeMatch', 'shapeAccuracy', 'shapeSwapped'].includes(metric) ? [0, 1] : undefined,
        reference: metric === 'speedRatio' ? { y: 1, label: 'training mean' } : undefined,
      },
    );
    put(`${metric}.png`, png);
  }
  return written;
}
