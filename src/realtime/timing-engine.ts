/**
 * An engine wrapper that times every forward with its shape: query tokens (the block's frames times
 * the tokens of one latent frame) and cached tokens (the rows the cache holds when the forward
 * runs). These are the samples the scheduler's cost model is fitted to (scheduler/cost-model.ts).
 * A block's steps looped by the engine (denoiseSteps, where the inner engine has it) are recorded as that many
 * forwards, each the call's time over the steps. Everything else passes through untouched.
 */
import { DelegatingEngine } from '../engine/delegating-engine.js';
import type { BatchedForward, DenoiseStepsRequest, Engine, ForwardRequest, ForwardResult } from '../engine/types.js';

export interface TimedForward {
  queryTokens: number;
  cachedTokens: number;
  ms: number;
  /** Streams' forwards in the call (a batched call over several timing engines: `forwardBatch`); absent: 1. */
  batch?: number;
}

export class TimingEngine extends DelegatingEngine {
  /** The inner engine's step loop, timed; absent when the inner engine has none. */
  readonly denoiseSteps?: (request: DenoiseStepsRequest) => Promise<void>;

  /**
   * `forwards`: where the timings go (timing engines whose forwards are batched together pass one list: a batched
   * call is recorded once, by the engine it was made on).
   */
  constructor(
    inner: Engine,
    private readonly tokensPerFrame: number,
    readonly forwards: TimedForward[] = [],
  ) {
    super(inner);
    const loop = inner.denoiseSteps?.bind(inner);
    if (loop) {
      this.denoiseSteps = async (request) => {
        const cachedTokens = this.inner.info().cacheRows;
        const t0 = performance.now();
        await loop(request);
        const steps = request.sigmas.length;
        const ms = (performance.now() - t0) / steps;
        const queryTokens = request.framePositions.length * this.tokensPerFrame;
        for (let k = 0; k < steps; k++) this.forwards.push({ queryTokens, cachedTokens, ms });
      };
    }
  }

  /** The inner engine's: timing engines over engines that batch batch too. */
  get batchKey(): string | undefined {
    return this.inner.batchKey;
  }

  /** The inner engines' batched forward (items on other timing engines are passed on unwrapped), timed as one call. */
  async forwardBatch(items: BatchedForward[]): Promise<ForwardResult[]> {
    if (typeof this.inner.forwardBatch !== 'function') throw new TypeError(`engine ${this.inner.name} has no batched forward`);
    const unwrapped = items.map((i) => ({ engine: i.engine instanceof TimingEngine ? i.engine.inner : i.engine, request: i.request }));
    const cachedTokens = unwrapped[0].engine.info().cacheRows;
    const t0 = performance.now();
    const results = await this.inner.forwardBatch(unwrapped);
    this.forwards.push({ queryTokens: items[0].request.timesteps.length * this.tokensPerFrame, cachedTokens, ms: performance.now() - t0, batch: items.length });
    return results;
  }

  override async forward(request: ForwardRequest): Promise<ForwardResult> {
    const cachedTokens = this.inner.info().cacheRows;
    const t0 = performance.now();
    const result = await this.inner.forward(request);
    this.forwards.push({ queryTokens: request.timesteps.length * this.tokensPerFrame, cachedTokens, ms: performance.now() - t0 });
    return result;
  }
}
