/**
 * TAEHV decoding with ONNX Runtime, on whatever thread runs it (the decoder's worker; tests and the
 * benchmark run it in-process). Two sessions of the same weights: a stream's first block (zero memory,
 * 3 frames dropped) and every later one (the memory as inputs). The memory is the sessions' state
 * outputs fed back as inputs: on the WebGPU provider those stay on the GPU ('gpu-buffer'), only the
 * frames come back to the host, already as RGB24 bytes.
 */
import * as ort from 'onnxruntime-node';
import { SinkstreamError } from '../../errors.js';
import { createSession, type OwnedSession, type Provider } from '../../engine/ort/sessions.js';
import type { FloatType } from '../../onnx/layers.js';
import type { ModelWeights } from '../../model/weights.js';
import { framesOfBlock, MEMBLOCKS, SPACE_UPSCALE, type TaehvShape } from './architecture.js';
import { buildTaehvGraph, TAEHV_IO } from './graph.js';

export interface TaehvRuntimeOptions {
  shape: TaehvShape;
  weights: ModelWeights;
  provider: Provider;
  /** The CPU provider always runs float32. */
  dtype: FloatType;
  /** CPU intra-op threads, 0 = all cores. */
  threads: number;
  allowSpinning?: boolean;
  /**
   * WebGPU: keep the memory on the GPU between blocks (default true; engine.residentCache false sends
   * it through the host, the transformer's fallback for drivers that fail).
   */
  resident?: boolean;
  /** `rgb24` (default) or planar float32 frames in [0, 1] (parity checks). */
  output?: 'rgb24' | 'float';
}

export interface DecodedBlock {
  /** rgb24: [frames, height, width, 3] bytes; float: [frames, 3, height, width]. */
  data: Uint8Array | Float32Array;
  frames: number;
}

function disposeOnDevice(tensors: Iterable<ort.Tensor>): void {
  for (const t of tensors) if (t.location === 'gpu-buffer') t.dispose();
}

export class TaehvRuntime {
  readonly width: number;
  readonly height: number;
  readonly dtype: FloatType;
  private state: ort.Tensor[] | null = null;
  private closed = false;

  private constructor(
    readonly shape: TaehvShape,
    readonly provider: Provider,
    dtype: FloatType,
    private readonly firstSession: OwnedSession,
    private readonly nextSession: OwnedSession,
  ) {
    this.width = shape.latentWidth * SPACE_UPSCALE;
    this.height = shape.latentHeight * SPACE_UPSCALE;
    this.dtype = dtype;
  }

  static async create(options: TaehvRuntimeOptions): Promise<TaehvRuntime> {
    const { shape, weights, provider, threads } = options;
    const dtype: FloatType = provider === 'cpu' ? 'float32' : options.dtype;
    const outputs = [TAEHV_IO.frames, ...MEMBLOCKS.map((_, m) => TAEHV_IO.stateOut(m))];
    const resident = options.resident ?? true;
    const settings = { provider, threads, allowSpinning: options.allowSpinning ?? false, gpuOutputs: (n: string) => resident && n !== TAEHV_IO.frames };
    const output = options.output ?? 'rgb24';
    const first = await createSession(buildTaehvGraph(shape, weights, { dtype, first: true, output }), settings, outputs);
    let next: OwnedSession;
    try {
      next = await createSession(buildTaehvGraph(shape, weights, { dtype, first: false, output }), settings, outputs);
    } catch (e) {
      await first.release();
      throw e;
    }
    return new TaehvRuntime(shape, provider, dtype, first, next);
  }

  /** The next block of the stream: latent [C, F, H, W] float32. */
  async decode(latent: Float32Array): Promise<DecodedBlock> {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'the TAEHV decoder is closed');
    const { latentChannels: C, latentHeight: H, latentWidth: W } = this.shape;
    const F = latent.length / (C * H * W);
    if (!Number.isInteger(F) || F < 1) {
      throw new SinkstreamError('ERR_ENGINE', `TAEHV decoder: a latent of ${latent.length} values is not [${C}, F, ${H}, ${W}]`);
    }
    const first = this.state === null;
    const feeds: Record<string, ort.Tensor> = { [TAEHV_IO.latent]: new ort.Tensor('float32', latent, [1, C, F, H, W]) };
    if (this.state) this.state.forEach((t, m) => (feeds[TAEHV_IO.state(m)] = t));
    // Every output is fetched: a run that fetches a subset of outputs with 'gpu-buffer' locations aborts
    // inside onnxruntime-node (src/engine/ort/ort-runtime.ts).
    const session = first ? this.firstSession.session : this.nextSession.session;
    const out = await session.run(feeds);
    const old = this.state;
    this.state = MEMBLOCKS.map((_, m) => out[TAEHV_IO.stateOut(m)] as ort.Tensor);
    if (old) disposeOnDevice(old);
    const frames = out[TAEHV_IO.frames] as ort.Tensor;
    const count = frames.dims[0];
    if (count !== framesOfBlock(F, first)) {
      throw new SinkstreamError('ERR_ENGINE', `TAEHV decoder: ${count} frames from ${F} latent frames, expected ${framesOfBlock(F, first)}`);
    }
    return { data: frames.data as Uint8Array | Float32Array, frames: count };
  }

  /** The next decode() starts a new stream. */
  reset(): void {
    if (this.state) disposeOnDevice(this.state);
    this.state = null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reset();
    await this.firstSession.release();
    await this.nextSession.release();
  }
}
