/**
 * The warm-up at engine start (`engine.warmup`): an engine that builds its kernels' plans on first use
 * (the native engine's cuDNN attention: one plan per key length) would otherwise pay for them inside the
 * stream's first blocks. The cache policy is played on the host to learn every cache size the stream's
 * forwards will attend, then one forward per size runs on a scratch cache (grown by gathering rows of a
 * first clean pass), and the cache is emptied again. The decoder decodes a first and a later block of
 * zeros and forgets them. Not covered: a prompt switch's re-cache forward (its query length is the
 * history's) and a retune to another window.
 */
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/types.js';
import type { Decoder } from '../decode/decoder.js';
import type { ModelDims } from '../model/dims.js';
import { createStreamCache } from '../cache/create-policy.js';

export interface WarmupReport {
  /** Cache rows the stream's forwards attend, ascending: one warm-up forward each. */
  cacheRows: number[];
  forwards: number;
  /** Wall time of the engine's part and of the decoder's part (they run concurrently), ms. */
  engineMs: number;
  decoderMs: number;
}

/** Blocks without a new cache size after which the policy's sizes are taken as all seen. */
const STABLE_BLOCKS = 16;
const MAX_BLOCKS = 1024;

/**
 * The distinct cache sizes (rows) the forwards of a stream under `config` attend, from the policy alone
 * (no engine): after each block's plan, and after a compression (scored with zeros: the size does not
 * depend on the scores).
 */
export function streamCacheSizes(config: Config, dims: Pick<ModelDims, 'layers' | 'tokensPerFrame'>): number[] {
  const cache = createStreamCache(config);
  const F = config.generation.blockFrames;
  const sizes = new Set<number>();
  let sinceNew = 0;
  for (let b = 0; b < MAX_BLOCKS && sinceNew < STABLE_BLOCKS; b++) {
    const before = sizes.size;
    const begun = cache.beginBlock(b * F, F);
    sizes.add(begun.update.rows);
    if (begun.compress) {
      const scores = new Float32Array(dims.layers * cache.held.length * dims.tokensPerFrame);
      sizes.add(cache.compress(scores, b * F, F).update.rows);
    }
    cache.endBlock(b * F, F);
    sinceNew = sizes.size > before ? 0 : sinceNew + 1;
  }
  return [...sizes].sort((a, b) => a - b);
}

/** One forward at each cache size (ascending), then an empty cache. The prompt must be set. */
async function warmEngine(config: Config, dims: ModelDims, engine: Engine, sizes: number[]): Promise<number> {
  const F = config.generation.blockFrames;
  const { latentChannels: C, latentHeight: H, latentWidth: W, tokensPerFrame: T } = dims;
  const request = (keepBlockKv: boolean) => ({
    latent: new Float32Array(C * F * H * W),
    timesteps: new Float32Array(F),
    framePositions: Int32Array.from({ length: F }, (_, f) => f),
    keepBlockKv,
    keepQueries: 'none' as const,
  });
  // The empty cache's forward keeps its K/V: the rows every larger scratch cache is gathered from.
  await engine.forward(request(true));
  let forwards = 1;
  let available = F * T; // current rows + pending rows the next update may gather from
  for (const rows of sizes) {
    if (rows === 0) continue;
    const sources = Int32Array.from({ length: rows }, (_, i) => i % available);
    await engine.updateCache({ rows, terms: 1, perLayer: false, sources, weights: new Float32Array(rows).fill(1), positions: new Float32Array(rows * 3) });
    await engine.forward(request(false));
    forwards++;
    available = rows;
  }
  await engine.resetCache();
  return forwards;
}

/** Decodes a first block and a later block of zeros (both of the decoder's paths), then forgets them. */
async function warmDecoder(config: Config, dims: ModelDims, decoder: Decoder): Promise<void> {
  const { latentChannels: C, latentHeight: H, latentWidth: W } = dims;
  const zeros = new Float32Array(C * config.generation.blockFrames * H * W);
  await decoder.decode(zeros);
  await decoder.decode(zeros);
  await decoder.reset();
}

export async function warmUp(config: Config, dims: ModelDims, engine: Engine, decoder: Decoder | null): Promise<WarmupReport> {
  const sizes = streamCacheSizes(config, dims);
  const t0 = performance.now();
  const engineDone = warmEngine(config, dims, engine, sizes).then((forwards) => ({ forwards, ms: performance.now() - t0 }));
  const decoderDone = decoder ? warmDecoder(config, dims, decoder).then(() => performance.now() - t0) : Promise.resolve(0);
  const [e, decoderMs] = await Promise.all([engineDone, decoderDone]);
  return { cacheRows: sizes, forwards: e.forwards, engineMs: e.ms, decoderMs };
}
