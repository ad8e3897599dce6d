/**
 * The base of engine wrappers: every call goes to the wrapped engine unchanged, so a wrapper overrides only what it
 * adds (timing, recording). Batched forwards are not passed on here: a wrapper that batches says so itself.
 */
import type { Engine, EngineInfo, ForwardRequest, ForwardResult } from './types.js';

export abstract class DelegatingEngine implements Engine {
  constructor(protected readonly inner: Engine) {}

  get name(): string {
    return this.inner.name;
  }
  forward(request: ForwardRequest): Promise<ForwardResult> {
    return this.inner.forward(request);
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
  info(): EngineInfo {
    return this.inner.info();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
