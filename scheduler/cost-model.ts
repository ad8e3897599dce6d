/**
 * How long the engine takes, per device, fitted from measured timings.
 *
 * The form follows the FLOP count of one forward (docs/model.md), per item i of a batch with q_i query
 * tokens attending to k_i = cached_i + q_i keys:
 *   projections + FFN + cross-attention  ~ q_i      (12 q d^2 + 4 q d ffn + 4 q textLen d, per layer)
 *   self-attention (QK^T and AV)         ~ q_i k_i  (4 q k d, per layer)
 * plus a fixed cost per call (launches, host work) and per item (time embedding, small kernels):
 *   forwardMs = overhead + perItem * B + perToken * sum(q_i) + perTokenKey * sum(q_i * k_i)
 * A block at s steps costs (s + 1) forwards (s denoising steps and the clean pass), then the decode
 * of its latent frames (and, for video-to-video, the encode of its input):
 *   decodeMs = decodeOverhead + decodePerFrame * latentFrames   (encode alike)
 * Fits minimise relative residuals, with every coefficient >= 0.
 */
import { nonNegativeLeastSquares, type LeastSquaresFit } from './least-squares.js';

export interface ForwardItemShape {
  queryTokens: number;
  cachedTokens: number;
}

/** One measured forward: `batch` items of the same shape (what a benchmark sweep measures). */
export interface ForwardSample {
  device: string;
  batch: number;
  queryTokens: number;
  cachedTokens: number;
  ms: number;
}

/** One measured decode (or encode) of `latentFrames` latent frames. */
export interface FrameCodecSample {
  device: string;
  latentFrames: number;
  ms: number;
}

export interface DeviceCoefficients {
  overheadMs: number;
  perItemMs: number;
  perTokenMs: number;
  perTokenKeyMs: number;
  decodeOverheadMs: number;
  decodePerLatentFrameMs: number;
  encodeOverheadMs: number;
  encodePerLatentFrameMs: number;
}

export interface FitQuality {
  forward: Pick<LeastSquaresFit, 'rmse' | 'r2'> & { samples: number };
  decode: Pick<LeastSquaresFit, 'rmse' | 'r2'> & { samples: number };
  encode: Pick<LeastSquaresFit, 'rmse' | 'r2'> & { samples: number };
}

export interface BlockShape extends ForwardItemShape {
  steps: number;
  latentFrames: number;
  /** Forwards of one denoising step (2 with classifier-free guidance); absent: 1. */
  forwardsPerStep?: number;
}

/** Forwards of a block at `steps` denoising steps: `forwardsPerStep` a step and the clean pass. */
export function blockForwards(steps: number, forwardsPerStep = 1): number {
  return steps * forwardsPerStep + 1;
}

export interface Samples {
  forward: readonly ForwardSample[];
  decode?: readonly FrameCodecSample[];
  encode?: readonly FrameCodecSample[];
}

const ZERO_CODEC = { overheadMs: 0, perLatentFrameMs: 0 };

export function forwardFeatures(items: readonly ForwardItemShape[]): [number, number, number, number] {
  let tokens = 0;
  let tokenKeys = 0;
  for (const item of items) {
    tokens += item.queryTokens;
    tokenKeys += item.queryTokens * (item.cachedTokens + item.queryTokens);
  }
  return [1, items.length, tokens, tokenKeys];
}

export class CostModel {
  private readonly devices: Map<string, DeviceCoefficients>;

  constructor(coefficients: Readonly<Record<string, DeviceCoefficients>>) {
    this.devices = new Map(Object.entries(coefficients).map(([id, c]) => [id, { ...c }]));
  }

  /** Fits every device that has forward samples. Devices without codec samples decode for free. */
  static fit(samples: Samples): { model: CostModel; quality: Record<string, FitQuality> } {
    const coefficients: Record<string, DeviceCoefficients> = {};
    const quality: Record<string, FitQuality> = {};
    const devices = [...new Set(samples.forward.map((s) => s.device))].sort();
    for (const device of devices) {
      const forward = samples.forward.filter((s) => s.device === device);
      const rows = forward.map((s) => forwardFeatures(Array.from({ length: s.batch }, () => s)));
      const fwd = nonNegativeLeastSquares(rows, forward.map((s) => s.ms), { relative: true });
      const decode = fitCodec((samples.decode ?? []).filter((s) => s.device === device));
      const encode = fitCodec((samples.encode ?? []).filter((s) => s.device === device));
      const [overheadMs, perItemMs, perTokenMs, perTokenKeyMs] = fwd.coefficients;
      coefficients[device] = {
        overheadMs,
        perItemMs,
        perTokenMs,
        perTokenKeyMs,
        decodeOverheadMs: decode.coefficients.overheadMs,
        decodePerLatentFrameMs: decode.coefficients.perLatentFrameMs,
        encodeOverheadMs: encode.coefficients.overheadMs,
        encodePerLatentFrameMs: encode.coefficients.perLatentFrameMs,
      };
      quality[device] = {
        forward: { rmse: fwd.rmse, r2: fwd.r2, samples: forward.length },
        decode: decode.quality,
        encode: encode.quality,
      };
    }
    return { model: new CostModel(coefficients), quality };
  }

  get deviceIds(): string[] {
    return [...this.devices.keys()];
  }

  coefficients(device: string): DeviceCoefficients {
    const c = this.devices.get(device);
    if (!c) throw new RangeError(`cost model has no device '${device}' (has: ${this.deviceIds.join(', ') || 'none'})`);
    return c;
  }

  has(device: string): boolean {
    return this.devices.has(device);
  }

  /** One batched forward of these items. */
  forwardMs(device: string, items: readonly ForwardItemShape[]): number {
    if (items.length === 0) return 0;
    const c = this.coefficients(device);
    const [, batch, tokens, tokenKeys] = forwardFeatures(items);
    return c.overheadMs + c.perItemMs * batch + c.perTokenMs * tokens + c.perTokenKeyMs * tokenKeys;
  }

  decodeMs(device: string, latentFrames: number): number {
    if (latentFrames <= 0) return 0;
    const c = this.coefficients(device);
    return c.decodeOverheadMs + c.decodePerLatentFrameMs * latentFrames;
  }

  encodeMs(device: string, latentFrames: number): number {
    if (latentFrames <= 0) return 0;
    const c = this.coefficients(device);
    return c.encodeOverheadMs + c.encodePerLatentFrameMs * latentFrames;
  }

  /** One block alone: its forwards (blockForwards) at batch 1 and its decode. */
  blockMs(device: string, block: BlockShape): number {
    return blockForwards(block.steps, block.forwardsPerStep) * this.forwardMs(device, [block]) + this.decodeMs(device, block.latentFrames);
  }

  /** Every device's coefficients as plain data (store a calibration; rebuild with `new CostModel`). */
  toJSON(): Record<string, DeviceCoefficients> {
    return Object.fromEntries([...this.devices].map(([id, c]) => [id, { ...c }]));
  }
}

function fitCodec(samples: readonly FrameCodecSample[]): {
  coefficients: { overheadMs: number; perLatentFrameMs: number };
  quality: FitQuality['decode'];
} {
  if (samples.length === 0) return { coefficients: ZERO_CODEC, quality: { rmse: 0, r2: 1, samples: 0 } };
  const distinct = new Set(samples.map((s) => s.latentFrames)).size;
  // One frame count cannot separate the overhead from the per-frame cost: attribute it all per frame.
  const rows = samples.map((s) => (distinct > 1 ? [1, s.latentFrames] : [0, s.latentFrames]));
  const fit = nonNegativeLeastSquares(rows, samples.map((s) => s.ms), { relative: true });
  return {
    coefficients: { overheadMs: fit.coefficients[0], perLatentFrameMs: fit.coefficients[1] },
    quality: { rmse: fit.rmse, r2: fit.r2, samples: samples.length },
  };
}
