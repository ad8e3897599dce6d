/**
 * umT5 prompt encoding on the calling thread: tokenizer -> embedding rows (looked up here, so the
 * 256k-row table never enters the graph) -> the encoder graph on ONNX Runtime -> Wan's context
 * [textLen, dim], rows past the prompt's tokens zero. session.run blocks its thread: the runtime
 * uses it from a worker (umt5-worker.ts).
 */
import * as ort from 'onnxruntime-node';
import { SinkstreamError } from '../errors.js';
import type { ModelWeights, WeightTensor } from '../model/weights.js';
import { createSession, type OwnedSession, type Provider } from '../engine/ort/sessions.js';
import { buildUmt5Graph, umt5Buckets, UMT5_IO } from './umt5-graph.js';
import { UMT5_EMBEDDING_KEY, type Umt5Arch } from './umt5-weights.js';
import type { Umt5Tokenizer } from './umt5-tokenizer.js';

export interface Umt5RuntimeOptions {
  arch: Umt5Arch;
  /** Consumed: the graph keeps the layers' tensors, the runtime keeps the embedding. */
  weights: ModelWeights;
  tokenizer: Umt5Tokenizer;
  /** Rows of the context (Wan: 512); prompts are truncated to it. */
  textLen: number;
  provider: Provider;
  /** CPU intra-op threads; 0 = ONNX Runtime's default. */
  threads: number;
}

export class Umt5Runtime {
  private constructor(
    readonly arch: Umt5Arch,
    readonly textLen: number,
    readonly tokenizer: Umt5Tokenizer,
    private readonly embedding: WeightTensor,
    private readonly owned: OwnedSession,
  ) {}

  static async create(o: Umt5RuntimeOptions): Promise<Umt5Runtime> {
    const embedding = o.weights.get(UMT5_EMBEDDING_KEY);
    if (!embedding) throw new SinkstreamError('ERR_MODEL_SHAPE', `text.weights: missing tensor '${UMT5_EMBEDDING_KEY}'`);
    if (o.tokenizer.vocabSize > o.arch.vocab) {
      throw new SinkstreamError(
        'ERR_MODEL_SHAPE',
        `text.tokenizer has ${o.tokenizer.vocabSize} pieces, more than the encoder's ${o.arch.vocab} embedding rows (text.arch.vocab): not this encoder's tokenizer`,
      );
    }
    const builder = buildUmt5Graph(o.arch, o.weights);
    o.weights.clear(); // the builder holds the layers' tensors until the session has them
    const owned = await createSession(builder, { provider: o.provider, threads: o.threads }, [UMT5_IO.context]);
    return new Umt5Runtime(o.arch, o.textLen, o.tokenizer, embedding, owned);
  }

  /** Token ids of a prompt (end-of-sequence included, at most textLen). */
  tokenize(prompt: string): number[] {
    return this.tokenizer.encode(prompt, this.textLen);
  }

  /** The encoder's rows for these ids: [ids.length, dim]. */
  async run(ids: number[]): Promise<Float32Array> {
    const { dim, buckets, maxDistance } = this.arch;
    const n = ids.length;
    const rows = new Float32Array(n * dim);
    ids.forEach((id, i) => rows.set(this.embedding.data.subarray(id * dim, (id + 1) * dim), i * dim));
    const out = await this.owned.session.run({
      [UMT5_IO.embeddings]: new ort.Tensor('float32', rows, [n, dim]),
      [UMT5_IO.buckets]: new ort.Tensor('int64', umt5Buckets(n, buckets, maxDistance), [n, n]),
    });
    return out[UMT5_IO.context].data as Float32Array;
  }

  /** Wan's context of a prompt: [textLen, dim], zero past its tokens. */
  async encode(prompt: string): Promise<Float32Array> {
    const context = new Float32Array(this.textLen * this.arch.dim);
    context.set(await this.run(this.tokenize(prompt)));
    return context;
  }

  async close(): Promise<void> {
    await this.owned.release();
  }
}
