/**
 * A decoder graph run with ONNX Runtime (CPU): a VAE decoder or a small one such as TAEHV,
 * exported to ONNX.
 *
 * Graph IO (float32; the names are used when present, else the graph's only input / output):
 *   input  `latent` [1, C, F, H, W]            (C, H, W = model.arch.latentChannels, model.latentHeight, model.latentWidth)
 *   output `frames` [1, 3, F_out, H_out, W_out] RGB in [-1, 1] (Wan VAE layout)
 * The graph is stateless: each call decodes one block on its own. At open, one latent frame of
 * zeros is decoded to learn the frame size and the frames per latent frame.
 */
import * as ort from 'onnxruntime-node';
import { SinkstreamError } from '../errors.js';
import type { Decoder } from './decoder.js';
import type { DecoderBackend } from './backend.js';

export const ONNX_DECODER_INPUT = 'latent';
export const ONNX_DECODER_OUTPUT = 'frames';

export class OnnxDecoder implements Decoder {
  readonly kind = 'onnx' as const;
  /** ONNX Runtime's default (CPU) provider; the graph's IO is float32. */
  readonly backend: DecoderBackend = { runtime: 'cpu', precision: 'fp32' };
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    private readonly latentChannels: number,
    private readonly latentHeight: number,
    private readonly latentWidth: number,
    readonly width: number,
    readonly height: number,
    readonly framesPerLatentFrame: number,
  ) {}

  /** Stateless: every block is decoded on its own. */
  get framesForFirstLatentFrame(): number {
    return this.framesPerLatentFrame;
  }

  async reset(): Promise<void> {}

  static async open(path: string, latentChannels: number, latentHeight: number, latentWidth: number): Promise<OnnxDecoder> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path);
    } catch (e) {
      throw new SinkstreamError('ERR_MODEL_FILE', `decoder.path ${path}: cannot load the ONNX decoder (${(e as Error).message})`, { cause: e });
    }
    const pick = (names: readonly string[], wanted: string, what: string): string => {
      if (names.includes(wanted)) return wanted;
      if (names.length === 1) return names[0];
      throw new SinkstreamError('ERR_MODEL_FILE', `decoder.path ${path}: the graph has ${what}s ${names.join(', ')} and none is named '${wanted}'`);
    };
    try {
      const inputName = pick(session.inputNames, ONNX_DECODER_INPUT, 'input');
      const outputName = pick(session.outputNames, ONNX_DECODER_OUTPUT, 'output');
      const probe = new Float32Array(latentChannels * latentHeight * latentWidth);
      const dims = await runGraph(session, inputName, outputName, probe, [1, latentChannels, 1, latentHeight, latentWidth], path);
      return new OnnxDecoder(path, session, inputName, outputName, latentChannels, latentHeight, latentWidth, dims[4], dims[3], dims[2]);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  async decode(latent: Float32Array): Promise<Uint8Array[]> {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', `ONNX decoder ${this.path}: decode() after close()`);
    const plane = this.latentChannels * this.latentHeight * this.latentWidth;
    const F = latent.length / plane;
    if (!Number.isInteger(F) || F < 1) {
      throw new RangeError(`latent of ${latent.length} values is not [${this.latentChannels}, F, ${this.latentHeight}, ${this.latentWidth}]`);
    }
    const output = await this.session.run({
      [this.inputName]: new ort.Tensor('float32', latent, [1, this.latentChannels, F, this.latentHeight, this.latentWidth]),
    });
    const tensor = output[this.outputName];
    const dims = checkFramesDims(tensor.dims, this.path);
    if (dims[3] !== this.height || dims[4] !== this.width) {
      throw new SinkstreamError('ERR_ENGINE', `ONNX decoder ${this.path}: frames of ${dims[4]}x${dims[3]}, expected ${this.width}x${this.height} as at open`);
    }
    const frames = planarToRgb24(tensor.data as Float32Array, dims[2], dims[3], dims[4]);
    tensor.dispose();
    return frames;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

function checkFramesDims(dims: readonly number[], path: string): [number, number, number, number, number] {
  if (dims.length !== 5 || dims[0] !== 1 || dims[1] !== 3) {
    throw new SinkstreamError('ERR_MODEL_FILE', `decoder.path ${path}: output has dims [${dims.join(', ')}], expected [1, 3, frames, height, width]`);
  }
  return dims as unknown as [number, number, number, number, number];
}

async function runGraph(
  session: ort.InferenceSession,
  inputName: string,
  outputName: string,
  data: Float32Array,
  dims: number[],
  path: string,
): Promise<[number, number, number, number, number]> {
  let out: ort.InferenceSession.OnnxValueMapType;
  try {
    out = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
  } catch (e) {
    throw new SinkstreamError('ERR_MODEL_FILE', `decoder.path ${path}: the graph does not accept a latent [${dims.join(', ')}] (${(e as Error).message})`, { cause: e });
  }
  const tensor = out[outputName];
  if (tensor.type !== 'float32') throw new SinkstreamError('ERR_MODEL_FILE', `decoder.path ${path}: output is ${tensor.type}, expected float32`);
  const result = checkFramesDims(tensor.dims, path);
  tensor.dispose();
  return result;
}

/** [3, F, H, W] planar RGB in [-1, 1] -> F RGB24 frames. */
export function planarToRgb24(data: Float32Array, frames: number, height: number, width: number): Uint8Array[] {
  const plane = height * width;
  const out: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    const rgb = new Uint8Array(plane * 3);
    for (let ch = 0; ch < 3; ch++) {
      const src = (ch * frames + f) * plane;
      for (let p = 0; p < plane; p++) {
        const v = Math.floor((data[src + p] + 1) * 127.5 + 0.5);
        rgb[p * 3 + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
    out.push(rgb);
  }
  return out;
}
