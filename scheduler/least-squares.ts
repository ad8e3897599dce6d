/**
 * Linear least squares min |A x - b| by Householder QR on column-scaled A (the cost model's features
 * span ten orders of magnitude), and a non-negative variant that drops the most negative coefficient
 * and refits until none is negative (cost coefficients are times; a negative one only fits noise).
 */

export interface LeastSquaresFit {
  coefficients: number[];
  /** Root mean square of the residuals. */
  rmse: number;
  /** Coefficient of determination (1 = perfect). */
  r2: number;
}

/** rows: m feature vectors of length n (m >= n). Columns that are all zero get coefficient 0. */
export function leastSquares(rows: readonly (readonly number[])[], targets: readonly number[]): LeastSquaresFit {
  const m = rows.length;
  const n = m === 0 ? 0 : rows[0].length;
  if (m !== targets.length) throw new RangeError(`leastSquares: ${m} rows but ${targets.length} targets`);
  const scale = new Array<number>(n).fill(0);
  for (const row of rows) for (let j = 0; j < n; j++) scale[j] = Math.max(scale[j], Math.abs(row[j]));
  const used = [...scale.keys()].filter((j) => scale[j] > 0);
  const k = used.length;
  if (m < k) throw new RangeError(`leastSquares: ${m} samples cannot fit ${k} coefficients`);
  // Column-major copy of the scaled, used columns.
  const a = used.map((j) => rows.map((row) => row[j] / scale[j]));
  const b = [...targets];
  for (let col = 0; col < k; col++) {
    const v = a[col];
    let norm = 0;
    for (let i = col; i < m; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const alpha = v[col] > 0 ? -norm : norm;
    const u = new Array<number>(m).fill(0);
    for (let i = col; i < m; i++) u[i] = v[i];
    u[col] -= alpha;
    let uu = 0;
    for (let i = col; i < m; i++) uu += u[i] * u[i];
    if (uu === 0) continue;
    const reflect = (w: number[]): void => {
      let dot = 0;
      for (let i = col; i < m; i++) dot += u[i] * w[i];
      const f = (2 * dot) / uu;
      for (let i = col; i < m; i++) w[i] -= f * u[i];
    };
    for (let c = col; c < k; c++) reflect(a[c]);
    reflect(b);
  }
  // Back substitution on the upper triangle R x = Q^T b.
  const x = new Array<number>(k).fill(0);
  for (let row = k - 1; row >= 0; row--) {
    let s = b[row];
    for (let c = row + 1; c < k; c++) s -= a[c][row] * x[c];
    const diag = a[row][row];
    x[row] = Math.abs(diag) < 1e-12 ? 0 : s / diag;
  }
  const coefficients = new Array<number>(n).fill(0);
  used.forEach((j, idx) => (coefficients[j] = x[idx] / scale[j]));
  return { coefficients, ...goodness(rows, targets, coefficients) };
}

/**
 * Least squares with every coefficient >= 0 (active-set: drop the most negative, refit).
 * `relative`: minimise relative rather than absolute residuals (timings carry relative noise, and a
 * 5 ms forward matters as much as a 100 ms one); rmse and r2 are still reported on the plain scale.
 */
export function nonNegativeLeastSquares(
  rows: readonly (readonly number[])[],
  targets: readonly number[],
  options: { relative?: boolean } = {},
): LeastSquaresFit {
  const n = rows.length === 0 ? 0 : rows[0].length;
  const weight = (i: number): number => (options.relative && targets[i] > 0 ? 1 / targets[i] : 1);
  const active = new Set<number>([...Array(n).keys()]);
  for (;;) {
    const masked = rows.map((row, i) => row.map((value, j) => (active.has(j) ? value * weight(i) : 0)));
    const fit = leastSquares(masked, targets.map((t, i) => t * weight(i)));
    let worst = -1;
    for (const j of active) if (fit.coefficients[j] < 0 && (worst < 0 || fit.coefficients[j] < fit.coefficients[worst])) worst = j;
    if (worst < 0) return { coefficients: fit.coefficients, ...goodness(rows, targets, fit.coefficients) };
    active.delete(worst);
  }
}

function goodness(rows: readonly (readonly number[])[], targets: readonly number[], x: readonly number[]): { rmse: number; r2: number } {
  const m = targets.length;
  if (m === 0) return { rmse: 0, r2: 1 };
  const mean = targets.reduce((s, t) => s + t, 0) / m;
  let ssRes = 0;
  let ssTot = 0;
  rows.forEach((row, i) => {
    const predicted = row.reduce((s, v, j) => s + v * x[j], 0);
    ssRes += (targets[i] - predicted) ** 2;
    ssTot += (targets[i] - mean) ** 2;
  });
  return { rmse: Math.sqrt(ssRes / m), r2: ssTot === 0 ? 1 : 1 - ssRes / ssTot };
}
