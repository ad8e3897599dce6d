/**
 * The Wan2.1 VAE decoder's layout (Wan2.1 `wan/modules/vae.py`, `Decoder3d` with the sizes of
 * `_video_vae`), as a list of stages shared by the ONNX graph, the weight table and the synthetic
 * generator. Key names are the published checkpoint's (`Wan2.1_VAE.pth`): `conv2.*` and
 * `decoder.*`; the encoder's keys are never read.
 *
 * Decoder3d, for base width `dim` and multipliers [1, 2, 4, 4] (widths dims = dim * [4, 4, 4, 2, 1]):
 *   conv1        causal 3x3x3 conv zDim -> dims[0]
 *   middle       ResidualBlock, AttentionBlock (per frame, one head), ResidualBlock
 *   upsamples    4 levels of (numResBlocks + 1) ResidualBlocks, each level but the last followed by a
 *                Resample: nearest 2x upsampling + 3x3 conv to half the width, with a time_conv
 *                (causal 3x1x1 conv to twice the width, the halves interleaved as two frames) on the
 *                levels `temporalUpsample` marks. Levels 1..3 take half the previous level's width.
 *   head         RMS_norm, SiLU, causal 3x3x3 conv -> 3 (RGB in [-1, 1])
 * ResidualBlock: RMS_norm, SiLU, causal conv, RMS_norm, SiLU, causal conv, plus the input (through a
 * 1x1x1 conv when the width changes). RMS_norm normalises over channels: x / ||x|| * sqrt(C) * gamma.
 */

export interface WanVaeArch {
  /** Base width (Wan2.1: 96). */
  dim: number;
  /** Latent channels (Wan2.1: 16). */
  zDim: number;
  dimMult: readonly number[];
  numResBlocks: number;
  /** Per upsampling level: does it double the frames (Wan2.1: the encoder's [false, true, true] reversed). */
  temporalUpsample: readonly boolean[];
}

/** The published Wan2.1 VAE (`_video_vae`: dim 96, z_dim 16, dim_mult [1, 2, 4, 4], 2 residual blocks). */
export const WAN21_VAE_ARCH: WanVaeArch = {
  dim: 96,
  zDim: 16,
  dimMult: [1, 2, 4, 4],
  numResBlocks: 2,
  temporalUpsample: [true, true, false],
};

/**
 * Per-channel mean and standard deviation of the 16 latent channels: constants of the published
 * Wan2.1 VAE (`WanVAE` in vae.py). The diffusion model works on (z - mean) / std; decoding starts
 * with z * std + mean.
 */
export const WAN21_LATENT_MEAN: readonly number[] = [
  -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
];
export const WAN21_LATENT_STD: readonly number[] = [
  2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916,
];

/** One step of the decoder. `scale`: its spatial size over the latent's (1, 2, 4, 8). */
export type VaeStage =
  | { kind: 'conv'; key: string; inDim: number; outDim: number; scale: number }
  | { kind: 'residual'; key: string; inDim: number; outDim: number; scale: number }
  | { kind: 'attention'; key: string; dim: number; scale: number }
  | { kind: 'resample'; key: string; dim: number; temporal: boolean; scale: number }
  | { kind: 'head'; key: string; dim: number; scale: number };

export function decoderStages(arch: WanVaeArch): VaeStage[] {
  const { dim, dimMult, numResBlocks } = arch;
  const dims = [dimMult[dimMult.length - 1], ...[...dimMult].reverse()].map((u) => dim * u);
  const stages: VaeStage[] = [];
  let scale = 1;
  stages.push({ kind: 'conv', key: 'decoder.conv1', inDim: arch.zDim, outDim: dims[0], scale });
  stages.push({ kind: 'residual', key: 'decoder.middle.0', inDim: dims[0], outDim: dims[0], scale });
  stages.push({ kind: 'attention', key: 'decoder.middle.1', dim: dims[0], scale });
  stages.push({ kind: 'residual', key: 'decoder.middle.2', inDim: dims[0], outDim: dims[0], scale });
  let index = 0;
  let outDim = dims[0];
  for (let level = 0; level < dims.length - 1; level++) {
    let inDim = level === 0 ? dims[level] : dims[level] / 2;
    outDim = dims[level + 1];
    for (let r = 0; r < numResBlocks + 1; r++) {
      stages.push({ kind: 'residual', key: `decoder.upsamples.${index++}`, inDim, outDim, scale });
      inDim = outDim;
    }
    if (level !== dimMult.length - 1) {
      stages.push({ kind: 'resample', key: `decoder.upsamples.${index++}`, dim: outDim, temporal: arch.temporalUpsample[level] ?? false, scale });
      scale *= 2;
    }
  }
  stages.push({ kind: 'head', key: 'decoder.head', dim: outDim, scale });
  return stages;
}

/** Every decoder key (and conv2) with its PyTorch shape. */
export function decoderWeightShapes(arch: WanVaeArch): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const conv3 = (key: string, out: number, inp: number, k: [number, number, number]): void => {
    shapes.set(`${key}.weight`, [out, inp, ...k]);
    shapes.set(`${key}.bias`, [out]);
  };
  const conv2 = (key: string, out: number, inp: number, k: number): void => {
    shapes.set(`${key}.weight`, [out, inp, k, k]);
    shapes.set(`${key}.bias`, [out]);
  };
  conv3('conv2', arch.zDim, arch.zDim, [1, 1, 1]);
  for (const s of decoderStages(arch)) {
    switch (s.kind) {
      case 'conv':
        conv3(s.key, s.outDim, s.inDim, [3, 3, 3]);
        break;
      case 'residual':
        shapes.set(`${s.key}.residual.0.gamma`, [s.inDim, 1, 1, 1]);
        conv3(`${s.key}.residual.2`, s.outDim, s.inDim, [3, 3, 3]);
        shapes.set(`${s.key}.residual.3.gamma`, [s.outDim, 1, 1, 1]);
        conv3(`${s.key}.residual.6`, s.outDim, s.outDim, [3, 3, 3]);
        if (s.inDim !== s.outDim) conv3(`${s.key}.shortcut`, s.outDim, s.inDim, [1, 1, 1]);
        break;
      case 'attention':
        shapes.set(`${s.key}.norm.gamma`, [s.dim, 1, 1]);
        conv2(`${s.key}.to_qkv`, 3 * s.dim, s.dim, 1);
        conv2(`${s.key}.proj`, s.dim, s.dim, 1);
        break;
      case 'resample':
        conv2(`${s.key}.resample.1`, s.dim / 2, s.dim, 3);
        if (s.temporal) conv3(`${s.key}.time_conv`, 2 * s.dim, s.dim, [3, 1, 1]);
        break;
      case 'head':
        shapes.set(`${s.key}.0.gamma`, [s.dim, 1, 1, 1]);
        conv3(`${s.key}.2`, 3, s.dim, [3, 3, 3]);
        break;
    }
  }
  return shapes;
}

/**
 * The causal convolutions that carry frames from one call to the next: each keeps the last
 * CACHE_FRAMES frames of its input. `channels` is that input's width, `scale` its spatial size over
 * the latent's.
 */
export interface CausalCache {
  /** The conv's key, e.g. `decoder.middle.0.residual.2`; the graph names its state `cache.<key>`. */
  key: string;
  channels: number;
  scale: number;
}

/** Frames of its input each causal conv keeps (vae.py's CACHE_T): the temporal kernel is 3. */
export const CACHE_FRAMES = 2;

export function causalCaches(arch: WanVaeArch): CausalCache[] {
  const caches: CausalCache[] = [];
  for (const s of decoderStages(arch)) {
    switch (s.kind) {
      case 'conv':
        caches.push({ key: s.key, channels: s.inDim, scale: s.scale });
        break;
      case 'residual':
        caches.push({ key: `${s.key}.residual.2`, channels: s.inDim, scale: s.scale });
        caches.push({ key: `${s.key}.residual.6`, channels: s.outDim, scale: s.scale });
        break;
      case 'resample':
        if (s.temporal) caches.push({ key: `${s.key}.time_conv`, channels: s.dim, scale: s.scale });
        break;
      case 'head':
        caches.push({ key: `${s.key}.2`, channels: s.dim, scale: s.scale });
        break;
      case 'attention':
        break;
    }
  }
  return caches;
}

/** Spatial upsampling of the whole decoder (8 for Wan2.1: three Resample levels). */
export function spatialScale(arch: WanVaeArch): number {
  return decoderStages(arch).reduce((s, st) => (st.kind === 'resample' ? s * 2 : s), 1);
}

/** Video frames per latent frame once a stream is under way (4 for Wan2.1). */
export function temporalScale(arch: WanVaeArch): number {
  return decoderStages(arch).reduce((s, st) => (st.kind === 'resample' && st.temporal ? s * 2 : s), 1);
}
