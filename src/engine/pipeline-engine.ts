/**
 * A pipeline of engines, one per stage, each holding a contiguous range of the transformer's layers
 * (and those layers' cache), each on its own thread (on a GPU machine: its own device). A forward
 * runs stage after stage, the hidden state [F, T, d] passing from one to the next; cache updates,
 * scores, resets and reads go to every stage at once, each on its layers. To the loop it is one
 * engine under the same contract (test/engine/contract.test.ts runs on it).
 *
 * Stages run one after another for one stream, so a single stream gains no speed (each stage's
 * session holds only its layers, which is what lets a model larger than one device run). Keeping
 * every stage busy needs several streams sharing the stages; here each pipeline has its own.
 */
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import type { CacheUpdate, Engine, EngineInfo, ForwardRequest, ForwardResult, QuerySelection } from './types.js';
import { concatFloat32 } from '../util/float32.js';

export type StageFactory = (layers: readonly [number, number]) => Promise<Engine>;

/** Contiguous layer ranges: `engine.stageLayers` when given, else as equal as the layer count allows. */
export function stageRanges(config: Config): Array<[number, number]> {
  const layers = config.model.arch.layers;
  const stages = config.engine.stages;
  const sizes =
    config.engine.stageLayers ?? Array.from({ length: stages }, (_, s) => Math.floor(layers / stages) + (s < layers % stages ? 1 : 0));
  const ranges: Array<[number, number]> = [];
  let from = 0;
  for (const n of sizes) {
    ranges.push([from, from + n]);
    from += n;
  }
  return ranges;
}

interface PipelineQueries {
  /** Each stage's handle of this pass's kept queries. */
  perStage: number[];
}

export class PipelineEngine implements Engine {
  readonly name: string;
  private readonly queries = new Map<number, PipelineQueries>();
  private nextQueriesId = 1;
  private closed = false;

  private constructor(private readonly stages: Engine[]) {
    this.name = `pipeline(${stages.map((s) => s.name).join(',')})`;
  }

  static async create(ranges: ReadonlyArray<readonly [number, number]>, createStage: StageFactory): Promise<PipelineEngine> {
    const started = await Promise.allSettled(ranges.map((r) => createStage(r)));
    const stages = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(stages.map((s) => s.close()));
      throw failed.reason;
    }
    return new PipelineEngine(stages);
  }

  private check(): void {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'the pipeline engine is closed');
  }

  async setPrompt(context: Float32Array): Promise<void> {
    this.check();
    await Promise.all(this.stages.map((s) => s.setPrompt(context)));
  }

  async forward(request: ForwardRequest): Promise<ForwardResult> {
    this.check();
    let input = request.latent;
    const perStage: number[] = [];
    for (const [i, stage] of this.stages.entries()) {
      // only the last stage's output is the flow
      const out = await stage.forward({ ...request, latent: input, flowInto: i === this.stages.length - 1 ? request.flowInto : undefined });
      if (out.queriesId !== undefined) perStage.push(out.queriesId);
      input = out.flow; // the hidden state, then (last stage) the flow
    }
    if (request.keepQueries === 'none') return { flow: input };
    const queriesId = this.nextQueriesId++;
    this.queries.set(queriesId, { perStage });
    return { flow: input, queriesId };
  }

  async updateCache(update: CacheUpdate): Promise<void> {
    this.check();
    // Each stage takes its own layers' tables out of a per-layer update (OrtRuntime slices them).
    await Promise.all(this.stages.map((s) => s.updateCache(update)));
  }

  async scoreCache(selections: QuerySelection[], reduce: 'sum' | 'max'): Promise<Float32Array> {
    this.check();
    const kept = selections.map((sel) => {
      const q = this.queries.get(sel.queriesId);
      if (!q) throw new SinkstreamError('ERR_ENGINE', `scoreCache: no kept queries with id ${sel.queriesId} (released, or never kept)`);
      return q;
    });
    const parts = await Promise.all(
      this.stages.map((stage, s) => stage.scoreCache(selections.map((sel, i) => ({ queriesId: kept[i].perStage[s], frames: sel.frames })), reduce)),
    );
    return concatFloat32(parts); // stage after stage = layer after layer: [layers, rows]
  }

  async releaseQueries(queriesId: number): Promise<void> {
    this.check();
    const q = this.queries.get(queriesId);
    if (!q) return;
    this.queries.delete(queriesId);
    await Promise.all(this.stages.map((stage, s) => stage.releaseQueries(q.perStage[s])));
  }

  async resetCache(): Promise<void> {
    this.check();
    await Promise.all(this.stages.map((s) => s.resetCache()));
  }

  async readCache(): Promise<{ keys: Float32Array; values: Float32Array; positions: Float32Array; rows: number }> {
    this.check();
    const parts = await Promise.all(this.stages.map((s) => s.readCache()));
    return {
      keys: concatFloat32(parts.map((p) => p.keys)),
      values: concatFloat32(parts.map((p) => p.values)),
      positions: concatFloat32(parts.map((p) => p.positions)),
      rows: parts[0].rows,
    };
  }

  info(): EngineInfo {
    const first = this.stages[0].info();
    return { ...first, name: this.name, provider: `${first.provider} x${this.stages.length} stages` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queries.clear();
    await Promise.all(this.stages.map((s) => s.close()));
  }
}
