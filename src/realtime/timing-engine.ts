/**
 * An engine wrapper that times every forward with its shape: query tokens (the block's frames times
 * the tokens of one latent frame) and cached tokens (the rows the cache holds when the forward
 * runs). These are the samples the scheduler's cost model is fitted to (scheduler/cost-model.ts).
 * Everything else passes through untouched.
 */
import type { Engine, ForwardRequest, ForwardResult } from '../engine/types.js';

export interface TimedForward {
  queryTokens: number;
  cachedTokens: number;
  ms: number;
}

export class TimingEngine implements Engine {
  readonly forwards: TimedForward[] = [];

  constructor(
    private readonly inner: Engine,
    private readonly tokensPerFrame: number,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const cachedTokens = this.inner.info().cacheRows;
    const t0 = performance.now();
    const result = await this.inner.forward(request);
    this.forwards.push({ queryTokens: request.timesteps.length * this.tokensPerFrame, cachedTokens, ms: performance.now() - t0 });
    return result;
  }

  setPrompt(context: Float32Array): Promise<void> {
    return this.inner.setPrompt(context);
  }
  updateCache(...args: Parameters<Engine['updateCache']>): Promise<void> {
    return this.inner.updateCache(...args);
  }
  scoreCache(...args: Parameters<Engine['scoreCache']>): Promise<Float32Array> {
    return this.inner.scoreCache(...args);
  }
  releaseQueries(queriesId: number): Promise<void> {
    return this.inner.releaseQueries(queriesId);
  }
  resetCache(): Promise<void> {
    return this.inner.resetCache();
  }
  readCache(): ReturnType<Engine['readCache']> {
    return this.inner.readCache();
  }
  info(): ReturnType<Engine['info']> {
    return this.inner.info();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
