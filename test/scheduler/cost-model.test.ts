import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CostModel, type ForwardSample } from '../../scheduler/cost-model.js';
import { leastSquares, nonNegativeLeastSquares } from '../../scheduler/least-squares.js';
import { seededRandom } from '../../scheduler/random.js';

const truth = { overheadMs: 4, perItemMs: 1.5, perTokenMs: 0.0021, perTokenKeyMs: 1.3e-7 };

function sweep(noise: number, seed = 7): ForwardSample[] {
  const random = seededRandom(seed);
  const out: ForwardSample[] = [];
  for (const batch of [1, 2, 4])
    for (const frames of [1, 3, 4])
      for (const cached of [0, 3, 9, 18]) {
        const q = frames * 1560;
        const c = cached * 1560;
        const exact = truth.overheadMs + batch * (truth.perItemMs + truth.perTokenMs * q + truth.perTokenKeyMs * q * (c + q));
        out.push({ device: 'gpu0', batch, queryTokens: q, cachedTokens: c, ms: exact * (1 + noise * (2 * random() - 1)) });
      }
  return out;
}

test('least squares solves an exactly determined system', () => {
  const fit = leastSquares([[1, 0], [0, 1], [1, 1]], [2, 3, 5]);
  assert.ok(Math.abs(fit.coefficients[0] - 2) < 1e-9 && Math.abs(fit.coefficients[1] - 3) < 1e-9);
  assert.ok(fit.r2 > 0.999999);
});

test('non-negative least squares drops a coefficient that would be negative', () => {
  // y = 2x exactly, plus a column that correlates negatively: plain LS would give it a negative weight.
  const rows = [[1, 1], [2, 0.5], [3, 0.2], [4, 0]];
  const y = [1.5, 3.8, 5.9, 8];
  assert.ok(leastSquares(rows, y).coefficients[1] < 0);
  const fit = nonNegativeLeastSquares(rows, y);
  assert.equal(fit.coefficients[1], 0);
  assert.ok(fit.coefficients[0] > 1.9 && fit.coefficients[0] < 2.1);
});

test('the fit recovers known coefficients from exact samples', () => {
  const { model, quality } = CostModel.fit({ forward: sweep(0) });
  const c = model.coefficients('gpu0');
  for (const key of ['overheadMs', 'perItemMs', 'perTokenMs', 'perTokenKeyMs'] as const) {
    assert.ok(Math.abs(c[key] - truth[key]) <= 1e-6 * Math.abs(truth[key]) + 1e-9, `${key}: ${c[key]} vs ${truth[key]}`);
  }
  assert.ok(quality.gpu0.forward.r2 > 0.999999);
});

test('with 3% noise the fit predicts within 3% across the sweep, and a block costs (steps + 1) forwards plus decode', () => {
  const { model } = CostModel.fit({
    forward: sweep(0.03),
    decode: [1, 2, 3, 4].map((f) => ({ device: 'gpu0', latentFrames: f, ms: 2 + 12 * f })),
  });
  for (const s of sweep(0)) {
    const predicted = model.forwardMs('gpu0', Array.from({ length: s.batch }, () => s));
    assert.ok(Math.abs(predicted / s.ms - 1) < 0.03, `${JSON.stringify(s)} predicted ${predicted}`);
  }
  assert.ok(Math.abs(model.decodeMs('gpu0', 3) - 38) < 1e-6);
  const shape = { queryTokens: 4680, cachedTokens: 14040, latentFrames: 3 };
  assert.ok(Math.abs(model.blockMs('gpu0', { ...shape, steps: 4 }) - (5 * model.forwardMs('gpu0', [shape]) + 38)) < 1e-9);
});

test('a heterogeneous batch costs the sum of its items plus one call overhead', () => {
  const model = new CostModel({ g: { ...truth, decodeOverheadMs: 0, decodePerLatentFrameMs: 0, encodeOverheadMs: 0, encodePerLatentFrameMs: 0 } });
  const a = { queryTokens: 100, cachedTokens: 0 };
  const b = { queryTokens: 300, cachedTokens: 900 };
  const both = model.forwardMs('g', [a, b]);
  assert.ok(Math.abs(both - (model.forwardMs('g', [a]) + model.forwardMs('g', [b]) - truth.overheadMs)) < 1e-9);
  assert.equal(model.forwardMs('g', []), 0);
});

test('coefficients survive a JSON round trip; an unknown device is named', () => {
  const { model } = CostModel.fit({ forward: sweep(0) });
  const again = new CostModel(JSON.parse(JSON.stringify(model)));
  assert.equal(again.forwardMs('gpu0', [{ queryTokens: 10, cachedTokens: 5 }]), model.forwardMs('gpu0', [{ queryTokens: 10, cachedTokens: 5 }]));
  assert.throws(() => model.forwardMs('gpu9', [{ queryTokens: 1, cachedTokens: 0 }]), /gpu9/);
});

test.run();
