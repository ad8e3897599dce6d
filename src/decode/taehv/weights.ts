/**
 * TAEHV decoder weights: a published checkpoint (taew2_1.pth or its .safetensors; the encoder's keys
 * are ignored, a prefix such as `vae.` in front of `decoder.` is accepted) checked key by key against
 * the configured shape before any tensor is read, or seeded synthetic weights at that shape.
 *
 * Synthetic distributions (tools/reference/taehv.py draws the same ones with torch): conv weights
 * N(0, (gain / sqrt(fan_in))^2), gain sqrt(2) where a ReLU follows (decoder.1, a MemBlock's first two
 * convs), 0.5 for a MemBlock's last conv (its residual branch), 1 otherwise; biases N(0, 0.02^2), the
 * last conv's N(0.5, 0.02^2) so that frames are centred in [0, 1]. Values from the runtime's seeded
 * generator (src/model/synthetic.ts), one stream per key.
 */
import { SinkstreamError } from '../../errors.js';
import { shapeSize } from '../../model/expected-shapes.js';
import { fillNormal, fnv1a32 } from '../../model/synthetic.js';
import { openCheckpoint } from '../../model/torch-checkpoint.js';
import type { ModelWeights } from '../../model/weights.js';
import { expectedShapes, TGROWS, type TaehvShape } from './architecture.js';

export function syntheticDistribution(key: string, shape: readonly number[]): { mean: number; std: number } {
  if (key === 'decoder.22.bias') return { mean: 0.5, std: 0.02 };
  if (key.endsWith('.bias')) return { mean: 0, std: 0.02 };
  const fanIn = shapeSize(shape.slice(1));
  const reluAfter = key === 'decoder.1.weight' || key.endsWith('.conv.0.weight') || key.endsWith('.conv.2.weight');
  const gain = key.endsWith('.conv.4.weight') ? 0.5 : reluAfter ? Math.SQRT2 : 1;
  return { mean: 0, std: gain / Math.sqrt(fanIn) };
}

export function syntheticTaehvWeights(shape: Pick<TaehvShape, 'latentChannels' | 'channels'>, seed: number): ModelWeights {
  const weights: ModelWeights = new Map();
  for (const [key, dims] of expectedShapes(shape)) {
    const { mean, std } = syntheticDistribution(key, dims);
    const data = new Float32Array(shapeSize(dims));
    fillNormal(data, (fnv1a32(`taehv.${key}`) ^ seed) >>> 0, mean, std);
    weights.set(key, { shape: dims, data });
  }
  return weights;
}

const formatShape = (s: readonly number[]): string => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/** A TGrow trained with a larger stride stores more output rows: its last `rows` are the ones used (as upstream). */
function tgrowRowsToUse(key: string, actual: readonly number[], expected: readonly number[]): number | null {
  const match = /^decoder\.(\d+)\.conv\.weight$/.exec(key);
  if (!match || !TGROWS.has(Number(match[1]))) return null;
  const [rows, ...rest] = expected;
  const ok = actual.length === expected.length && actual[0] > rows && actual[0] % expected[1] === 0 && sameShape(actual.slice(1), rest);
  return ok ? rows : null;
}

/** Reads and checks a checkpoint (ERR_MODEL_FILE: unreadable; ERR_MODEL_SHAPE: names the first missing or wrong key). */
export async function loadTaehvCheckpoint(path: string, shape: Pick<TaehvShape, 'latentChannels' | 'channels'>): Promise<ModelWeights> {
  const reader = await openCheckpoint(path);
  try {
    const anchor = reader.keys().find((k) => k === 'decoder.1.weight' || k.endsWith('.decoder.1.weight'));
    const configured = `decoder.taehv.channels ${formatShape(shape.channels)}, model.arch.latentChannels ${shape.latentChannels}`;
    const shapeError = (what: string): SinkstreamError => new SinkstreamError('ERR_MODEL_SHAPE', `decoder.weights ${path}: ${what} (configured ${configured})`);
    if (anchor === undefined) throw shapeError("missing key 'decoder.1.weight': not a TAEHV checkpoint");
    const prefix = anchor.slice(0, anchor.length - 'decoder.1.weight'.length);
    const plan: Array<{ key: string; source: string; rows: number | null }> = [];
    for (const [key, expected] of expectedShapes(shape)) {
      const source = prefix + key;
      const entry = reader.entries.get(source);
      if (!entry) throw shapeError(`missing key '${source}', expected shape ${formatShape(expected)}`);
      if (sameShape(entry.shape, expected)) {
        plan.push({ key, source, rows: null });
        continue;
      }
      const rows = tgrowRowsToUse(key, entry.shape, expected);
      if (rows === null) throw shapeError(`key '${source}' has shape ${formatShape(entry.shape)}, expected ${formatShape(expected)}`);
      plan.push({ key, source, rows });
    }
    const weights: ModelWeights = new Map();
    for (const { key, source, rows } of plan) {
      const t = await reader.read(source);
      if (rows === null) {
        weights.set(key, t);
      } else {
        const perRow = shapeSize(t.shape.slice(1));
        weights.set(key, { shape: [rows, ...t.shape.slice(1)], data: t.data.slice((t.shape[0] - rows) * perRow) });
      }
    }
    return weights;
  } finally {
    await reader.close();
  }
}

/** `decoder.weights`: 'synthetic' or a checkpoint path. */
export function loadTaehvWeights(source: string, shape: Pick<TaehvShape, 'latentChannels' | 'channels'>, seed: number): Promise<ModelWeights> {
  if (source === 'synthetic') return Promise.resolve(syntheticTaehvWeights(shape, seed));
  return loadTaehvCheckpoint(source, shape);
}
