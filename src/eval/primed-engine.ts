/**
 * An engine decorator that gives the first block instead of generating it (image-to-video style):
 * during the first block's denoising steps the flow is replaced by the one that lands x0 exactly on
 * the given latent, x0 = x - s * flow  =>  flow = (x - x0) / s. The inner engine still runs every
 * pass (its queries, cache and timing stay real), and the first block's clean pass writes the given
 * block's K/V into the cache, so every later block is the model's own continuation under the real
 * loop and the real cache policy.
 *
 * Why: the demo model cannot open a video from noise under the few-step loop (docs/demo-model.md);
 * the evaluation is about what the cache policies do after the opening.
 */
import type { CacheUpdate, Engine, EngineInfo, ForwardRequest, ForwardResult, QuerySelection } from '../engine/types.js';

export class PrimedEngine implements Engine {
  readonly name: string;
  private opened = false;

  /** opening: the first block's latent [channels, F, H, W]. */
  constructor(
    private readonly inner: Engine,
    private readonly opening: Float32Array,
    private readonly channels: number,
  ) {
    this.name = `${inner.name}+primed`;
  }

  setPrompt(context: Float32Array): Promise<void> {
    return this.inner.setPrompt(context);
  }

  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const result = await this.inner.forward(request);
    if (request.keepBlockKv) {
      this.opened = true;
      return result;
    }
    if (this.opened) return result;
    const { latent, timesteps } = request;
    if (latent.length !== this.opening.length) {
      throw new RangeError(`primed opening has ${this.opening.length} values, the first block ${latent.length}`);
    }
    const frames = timesteps.length;
    const plane = latent.length / (this.channels * frames);
    const flow = new Float32Array(latent.length);
    for (let c = 0; c < this.channels; c++) {
      for (let f = 0; f < frames; f++) {
        const s = timesteps[f] / 1000;
        const base = (c * frames + f) * plane;
        for (let i = 0; i < plane; i++) flow[base + i] = (latent[base + i] - this.opening[base + i]) / s;
      }
    }
    return { ...result, flow };
  }

  updateCache(update: CacheUpdate): Promise<void> {
    return this.inner.updateCache(update);
  }

  scoreCache(queries: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array> {
    return this.inner.scoreCache(queries, reduce);
  }

  releaseQueries(queriesId: number): Promise<void> {
    return this.inner.releaseQueries(queriesId);
  }

  async resetCache(): Promise<void> {
    this.opened = false;
    await this.inner.resetCache();
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
