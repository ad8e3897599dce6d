/** Sizes derived from the architecture config (docs/model.md). */
import type { ArchConfig, Config } from '../config/schema.js';

export interface ModelDims {
  dim: number;
  layers: number;
  heads: number;
  headDim: number;
  ffnDim: number;
  freqDim: number;
  latentChannels: number;
  patch: [number, number, number];
  textDim: number;
  textLen: number;
  eps: number;
  ropeTheta: number;
  ropeMaxPosition: number;
  /** Complex pairs of a head for (frame, row, column); they sum to headDim / 2. */
  ropeSplit: [number, number, number];
  latentHeight: number;
  latentWidth: number;
  /** Tokens per latent frame: (latentHeight / patchH) * (latentWidth / patchW). */
  tokensPerFrame: number;
  /** Token grid of one frame. */
  gridHeight: number;
  gridWidth: number;
  /** Output features per token: latentChannels * prod(patch). */
  patchFeatures: number;
  /** What the head outputs: the flow, or the clean sample x0 (the loop converts it to the flow). */
  prediction: ArchConfig['prediction'];
}

/** Wan's split of a head's dims: frame gets d - 4*(d//6), row and column 2*(d//6) each (in dims). */
export function wanRopeSplit(headDim: number): [number, number, number] {
  const sixth = Math.floor(headDim / 6);
  return [(headDim - 4 * sixth) / 2, sixth, sixth];
}

export function modelDims(config: Pick<Config, 'model'>): ModelDims {
  const arch: ArchConfig = config.model.arch;
  const headDim = arch.dim / arch.heads;
  const [, ph, pw] = arch.patch;
  const gridHeight = config.model.latentHeight / ph;
  const gridWidth = config.model.latentWidth / pw;
  return {
    dim: arch.dim,
    layers: arch.layers,
    heads: arch.heads,
    headDim,
    ffnDim: arch.ffnDim,
    freqDim: arch.freqDim,
    latentChannels: arch.latentChannels,
    patch: arch.patch,
    textDim: arch.textDim,
    textLen: arch.textLen,
    eps: arch.eps,
    ropeTheta: arch.ropeTheta,
    ropeMaxPosition: arch.ropeMaxPosition,
    ropeSplit: arch.ropeSplit ?? wanRopeSplit(headDim),
    latentHeight: config.model.latentHeight,
    latentWidth: config.model.latentWidth,
    tokensPerFrame: gridHeight * gridWidth,
    gridHeight,
    gridWidth,
    patchFeatures: arch.latentChannels * arch.patch[0] * ph * pw,
    prediction: arch.prediction,
  };
}

/** RoPE frequencies of each part: w_j = theta^(-2j / partDim), partDim = 2 * pairs. */
export function ropeFrequencies(dims: Pick<ModelDims, 'ropeSplit' | 'ropeTheta'>): [Float64Array, Float64Array, Float64Array] {
  const part = (pairs: number): Float64Array => {
    const w = new Float64Array(pairs);
    for (let j = 0; j < pairs; j++) w[j] = Math.pow(dims.ropeTheta, (-2 * j) / (2 * pairs));
    return w;
  };
  return [part(dims.ropeSplit[0]), part(dims.ropeSplit[1]), part(dims.ropeSplit[2])];
}
