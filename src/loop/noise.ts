/**
 * Seeded Gaussian noise. Every (seed, block, step) draws from its own stream, so the same seed gives
 * the same video whatever was generated before or in between (e.g. after a prompt switch).
 */

/** 32-bit mix of several integers (murmur3 finaliser style). */
function mix32(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h ^= Math.imul((v | 0) ^ (v >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** sfc32: a small, fast, well-tested 32-bit generator. */
function sfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a |= 0; b |= 0; c |= 0; d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

export function gaussianNoise(length: number, seed: number, ...stream: number[]): Float32Array {
  return fillGaussianNoise(new Float32Array(length), seed, ...stream);
}

/** gaussianNoise(out.length, seed, ...stream) written into `out` (a buffer used again and again); returns `out`. */
export function fillGaussianNoise(out: Float32Array, seed: number, ...stream: number[]): Float32Array {
  const next = sfc32(mix32(seed, 1, ...stream), mix32(seed, 2, ...stream), mix32(seed, 3, ...stream), mix32(seed, 4, ...stream));
  for (let i = 0; i < 12; i++) next();
  const length = out.length;
  for (let i = 0; i < length; i += 2) {
    // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
    const u = 1 - next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < length) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
