/**
 * The autoregressive loop (docs/model.md, The loop; Self-Forcing semantics): each block starts from
 * seeded noise (or, with generation.opening `scene`, the first block is drawn from the prompt), is
 * denoised over the configured steps (re-noised with fresh noise between steps, or an Euler step with
 * generation.sampler `ode`), decoded to frames, and written into the cache by a clean pass at t = 0.
 * Prompt switches and cache retunes take effect at a block's start. What the cache holds is decided
 * in src/cache; the engine moves tensors.
 *
 * The clean pass of block b runs at the start of block b+1, so a block's frames are handed out one
 * forward earlier (lower latency); the result is identical.
 *
 * Decoding overlaps the engine (a pipeline of depth 1): once block b is denoised its decode starts and
 * its clean pass is queued on the engine at once, so the decode runs while the engine works; a caller
 * that asks for block b+1 before block b's frames arrive gets b+1's denoising started meanwhile too.
 * Blocks are handed out in order, each when its frames are decoded; a failed decode fails its block and
 * every later one (the decoder's memory no longer follows the stream).
 */
import type { Config, CacheConfig } from '../config/schema.js';
import { patchConfig } from '../config/load.js';
import { SinkstreamError } from '../errors.js';
import type { Engine, EngineInfo, ForwardRequest, ForwardResult } from '../engine/types.js';
import { createEngine } from '../engine/create-engine.js';
import { modelDims, type ModelDims } from '../model/dims.js';
import { createStreamCache, retuneStreamCache } from '../cache/create-policy.js';
import type { StreamCache } from '../cache/stream-cache.js';
import type { BlockPlan, HeldFrame } from '../cache/types.js';
import { createDecoder, videoFramesOfBlock, type Decoder, type DecoderBackend } from '../decode/decoder.js';
import { createPromptEncoder, type PromptEncoder } from '../text/prompt-encoder.js';
import { checkWeights, loadTextEncoderTables } from '../model/load-weights.js';
import type { ModelWeights } from '../model/weights.js';
import { createSceneOpening, type SceneOpening } from '../scene/opening.js';
import { fillGaussianNoise } from './noise.js';
import { openingScaleOf } from './guidance-scale.js';
import { openingStepsOf } from './opening-steps.js';
import { denoisedInto, eulerInPlace, flowOfSampleInPlace, guidedFlowInPlace, renoiseInPlace, SAMPLE_SIGMA_FLOOR, startFromFrame } from './sampler.js';
import { stepsForCount, stepsFromNoise, warpedSigmas } from './timesteps.js';
import { firstNonFinite } from '../util/float32.js';
import type { FrameBlock } from './types.js';
import { warmUp, type WarmupReport } from './warmup.js';

/** Cache keys a retune changes; a nested section (participative) may name only some of its keys. */
export type CacheRetune = { [K in keyof CacheConfig]?: CacheConfig[K] extends object ? Partial<CacheConfig[K]> : CacheConfig[K] };

/** A stream of video blocks from the autoregressive loop (named so as not to shadow the built-in `Generator`). */
export interface BlockGenerator extends AsyncIterable<FrameBlock> {
  readonly config: Config;
  /** Decoded frame size, pixels (0 without a decoder). */
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /**
   * Video frames each block yields once the stream is under way. A streaming decoder's first block
   * gives fewer (TAEHV, Wan VAE: 4F - 3 for F latent frames): see framesOfBlock.
   */
  readonly framesPerBlock: number;
  /** Video frames block `index` yields (0: the stream's first block). */
  framesOfBlock(index: number): number;
  /** One-time costs paid by createGenerator before the first block (see StartupTimings). */
  readonly startup: StartupTimings;
  /** Generates the next block; `steps` degrades it to fewer denoising steps (the scheduler's ladder). */
  next(options?: BlockOptions): Promise<FrameBlock>;
  /**
   * Switches the prompt before the next block, seamlessly (LongLive KV re-cache): the sink stays,
   * the cross-attention K/V are recomputed, and the cached frames' latents are re-run once at t = 0
   * under the new prompt to rebuild their self-attention K/V.
   */
  setPrompt(prompt: string): Promise<void>;
  /**
   * Changes cache keys from the next block on: the patch is laid over the configuration as a live
   * stream's retune is (src/config/load.ts `patchConfig`: sections key by key, so a patch of
   * `participative.budget` keeps the other participative keys) and validated (ERR_CONFIG_INVALID on
   * a bad combination, nothing changed).
   */
  retune(cache: CacheRetune): void;
  /** What the cache holds now (policy view). */
  cacheView(): HeldFrame[];
  engineInfo(): EngineInfo;
  /** What runs the decode (runtime, precision, GPU); null without a decoder. */
  decoderBackend(): DecoderBackend | null;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface StartupTimings {
  /** Opening the decoder (weights, its own plans and warm-up), ms; 0 without one. */
  decoderOpenMs: number;
  /** Building the engine (0 when the caller passed one in), ms. */
  engineMs: number;
  /** The warm-up (`engine.warmup`): forwards at every key length the stream will use and a decode; 0 when off. */
  warmupMs: number;
  /** What the warm-up ran (null when off). */
  warmup: WarmupReport | null;
}

export interface BlockOptions {
  /** Denoising steps for this block (default: the configured list). */
  steps?: number;
}

export interface GeneratorOptions {
  /** Use this engine instead of creating one from the config (tests, the scheduler's pipelines). */
  engine?: Engine;
  /** Aborting closes the generator (the block in flight finishes first). */
  signal?: AbortSignal;
  /** Use this text encoder instead of creating one from the config (serve's shared umT5); the caller closes it. */
  text?: PromptEncoder;
  /** Use this decoder instead of creating one from the config (tests); the generator closes it. */
  decoder?: Decoder | null;
}

/** `engine.warmup` unset: on for the native engine (cuDNN builds its plans on first use), off otherwise. */
export function warmupEnabled(config: Pick<Config, 'engine'>): boolean {
  return config.engine.warmup ?? config.engine.name === 'native';
}

/** The text encoder only needs its tables: read those tensors, never the whole model here. */
async function textWeights(config: Config): Promise<ModelWeights> {
  if (config.model.weights === 'synthetic' || config.text.encoder !== 'builtin') return new Map();
  return loadTextEncoderTables(config);
}

export async function createGenerator(config: Config, options: GeneratorOptions = {}): Promise<BlockGenerator> {
  const dims = modelDims(config);
  const text = options.text ?? (await createPromptEncoder(config, await textWeights(config)));
  const ownsText = !options.text;
  let context: Float32Array;
  let guidance: Guidance | null;
  try {
    context = await text.encode(config.generation.prompt); // a bad prompt fails before anything starts
    guidance = await guidanceOf(config, text, context);
  } catch (e) {
    if (ownsText) await text.close?.();
    throw e;
  }
  const scene = config.generation.opening === 'scene' ? createSceneOpening(config) : null;
  const drawn = scene ? { scene, latent: scene.latentFor(config.generation.prompt) } : null;
  const d0 = performance.now();
  const decoder = options.decoder !== undefined ? options.decoder : await createDecoder(config);
  const e0 = performance.now();
  let engine: Engine;
  try {
    engine = options.engine ?? (await createEngine(config));
  } catch (e) {
    await decoder?.close();
    if (ownsText) await text.close?.();
    throw e;
  }
  const startup: StartupTimings = { decoderOpenMs: e0 - d0, engineMs: options.engine ? 0 : performance.now() - e0, warmupMs: 0, warmup: null };
  try {
    await engine.setPrompt(context);
    if (warmupEnabled(config)) {
      const w0 = performance.now();
      startup.warmup = await warmUp(config, dims, engine, decoder);
      startup.warmupMs = performance.now() - w0;
    }
  } catch (e) {
    if (!options.engine) await engine.close();
    await decoder?.close();
    if (ownsText) await text.close?.();
    throw e;
  }
  const generator = new BlockLoop(config, dims, engine, text, decoder, !options.engine, drawn, ownsText, startup, context, guidance);
  if (options.signal) {
    if (options.signal.aborted) await generator.close();
    else options.signal.addEventListener('abort', () => void generator.close(), { once: true });
  }
  return generator;
}

/**
 * Classifier-free guidance (generation.guidance or generation.openingGuidance != 1): the scales of the opening block
 * and of the others, and the unconditional forward's context.
 */
interface Guidance {
  scale: number;
  openingScale: number;
  uncond: Float32Array;
}

/**
 * The unconditional context: the negative prompt's encoding, or the empty prompt's (prompt length 0: every
 * position zero-padded, an all-zero context). null when guidance is off.
 */
async function guidanceOf(config: Config, text: PromptEncoder, context: Float32Array): Promise<Guidance | null> {
  if (!guides(config)) return null;
  const { guidance, negativePrompt } = config.generation;
  const uncond = negativePrompt ? await encodeNegativePrompt(text, negativePrompt) : new Float32Array(context.length);
  return { scale: guidance, openingScale: openingScaleOf(config), uncond };
}

/** Whether any block of the stream is guided (the opening's scale or the others' differs from 1). */
function guides(config: Config): boolean {
  return config.generation.guidance !== 1 || openingScaleOf(config) !== 1;
}

/** The negative prompt's context; a prompt the encoder refuses is named as generation.negativePrompt. */
async function encodeNegativePrompt(text: PromptEncoder, negativePrompt: string): Promise<Float32Array> {
  try {
    return await text.encode(negativePrompt);
  } catch (e) {
    if (e instanceof SinkstreamError) throw new SinkstreamError(e.code, `generation.negativePrompt: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Which context the engine holds when the stream guides (its setPrompt switches between the two). */
type HeldContext = 'prompt' | 'uncond';

/**
 * What createGenerator reads, checked with the same errors, without building an engine (which loads
 * the same weights through loadWeights): the text encoder and its vocabulary with the configured
 * prompt, the drawn opening, the weights, the decoder. For a server to
 * refuse to start on a broken model.
 */
export async function checkModel(config: Config): Promise<void> {
  const text = await createPromptEncoder(config, await textWeights(config));
  try {
    await text.encode(config.generation.prompt);
    if (guides(config) && config.generation.negativePrompt) await encodeNegativePrompt(text, config.generation.negativePrompt);
  } finally {
    await text.close?.(); // umt5: its reference to the shared encoder (serve holds its own)
  }
  if (config.generation.opening === 'scene') createSceneOpening(config).latentFor(config.generation.prompt);
  await checkWeights(config);
  const decoder = await createDecoder(config);
  await decoder?.close();
}

interface PendingClean {
  latent: Float32Array;
  framePositions: Int32Array;
  blockStart: number;
}

/** A block whose engine work is done, its frames still being decoded. */
interface ProducedBlock {
  block: FrameBlock;
  /** The decode, started; its rejection is also recorded by the generator (decodeFailure). */
  decoding: Promise<Uint8Array[]>;
  /** When produceBlock started (the block's totalMs runs from there to its hand-out). */
  startedAt: number;
}

interface DrawnOpening {
  scene: SceneOpening;
  latent: Float32Array;
}

class BlockLoop implements BlockGenerator {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly framesPerBlock: number;
  private currentConfig: Config;
  private cache: StreamCache;
  private sigmas: number[];
  private blockIndex = 0;
  private pendingClean: PendingClean | null = null;
  /** Clean latents [C, 1, H, W] of the frames the cache may hold, for the prompt switch's re-cache. */
  private frameLatents = new Map<number, Float32Array>();
  private nextCacheConfig: CacheConfig | null = null;
  /** The prompt switch the next block makes, its context ready. */
  private nextPrompt: { prompt: string; context: Float32Array } | null = null;
  /** setPrompt calls so far: a call whose context arrives after a later call's is dropped. */
  private promptRequests = 0;
  private engineMs = 0;
  private closed = false;
  /** The engine part of the last block asked for (the next block's engine work waits for it). */
  private running: Promise<unknown> = Promise.resolve();
  /** The previous block's clean pass, started as soon as that block was denoised: resolves to its engine ms. */
  private cleaning: Promise<number> = Promise.resolve(0);
  /** The last block handed out (settled either way): blocks are handed out in order. */
  private handedOut: Promise<unknown> = Promise.resolve();
  /** The first failed decode (block index and error): that block and every later one fail with it. */
  private decodeFailure: { block: number; error: unknown } | null = null;
  /**
   * The block's latent, drawn as its first noise and updated in place by every step (an engine reads a request's
   * latent only until its forward settles), and the next step's fresh noise: two arrays for the whole stream
   * instead of new ones at every step (their allocation and collection were on the host's turn between forwards).
   */
  private latentBuffer: Float32Array | null = null;
  private noiseBuffer: Float32Array | null = null;
  /** Where an engine that takes `flowInto` writes the steps' and the clean pass's flows (read before the next call). */
  private flowBuffer: Float32Array | null = null;
  /** Guided steps: where the unconditional forward's flow goes, and where the guided flow is combined. */
  private uncondFlowBuffer: Float32Array | null = null;
  /** A block looped by the engine (denoiseSteps): every step's fresh noise, drawn at once. */
  private stepNoiseBuffer: Float32Array | undefined;
  /** Guided streams: the context the engine holds now (the clean pass and the re-cache need the prompt's). */
  private held: HeldContext = 'prompt';

  constructor(
    config: Config,
    private readonly dims: ModelDims,
    private readonly engine: Engine,
    private readonly text: PromptEncoder,
    private readonly decoder: Decoder | null,
    private readonly ownsEngine: boolean,
    /** `generation.opening: scene`: the first block, drawn from the prompt (not generated). */
    private drawnOpening: DrawnOpening | null = null,
    private readonly ownsText = true,
    readonly startup: StartupTimings = { decoderOpenMs: 0, engineMs: 0, warmupMs: 0, warmup: null },
    /** The prompt's context, as the engine was given it (a guided stream sets it again after the unconditional forward). */
    private promptContext: Float32Array = new Float32Array(0),
    private readonly guidance: Guidance | null = null,
  ) {
    this.currentConfig = config;
    this.cache = createStreamCache(config);
    this.sigmas = warpedSigmas(config.generation.steps, config.generation.shift);
    this.fps = config.generation.fps;
    this.width = decoder?.width ?? 0;
    this.height = decoder?.height ?? 0;
    this.framesPerBlock = this.framesOfBlock(1);
  }

  framesOfBlock(index: number): number {
    const F = this.currentConfig.generation.blockFrames;
    return this.decoder ? videoFramesOfBlock(this.decoder, F, index) : F;
  }

  /** Video-frame index of block `index`'s first frame. */
  private firstFrameOf(index: number): number {
    return index === 0 ? 0 : this.framesOfBlock(0) + (index - 1) * this.framesPerBlock;
  }

  /** The configuration in force (retune and prompt switches update it). */
  get config(): Config {
    return this.currentConfig;
  }

  private set config(next: Config) {
    this.currentConfig = next;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FrameBlock> {
    while (!this.closed) yield await this.next();
  }

  next(options: BlockOptions = {}): Promise<FrameBlock> {
    // The engine runs one block at a time, even if callers overlap; decodes overlap the next block's engine work.
    const produced = this.running.then(() => this.produceBlock(options.steps));
    this.running = produced.catch(() => undefined);
    const previous = this.handedOut;
    const handOut = previous.then(() => produced).then((p) => this.handOut(p));
    this.handedOut = handOut.catch(() => undefined);
    return handOut;
  }

  /** The block with its frames, once decoded; a decode failure (its own or an earlier block's) fails it. */
  private async handOut(p: ProducedBlock): Promise<FrameBlock> {
    const frames = await p.decoding;
    const failure = this.decodeFailure;
    if (failure && failure.block < p.block.index) {
      const code = failure.error instanceof SinkstreamError ? failure.error.code : 'ERR_ENGINE';
      throw new SinkstreamError(code, `block ${p.block.index}: not decoded, the decoder failed at block ${failure.block}: ${(failure.error as Error).message}`, {
        cause: failure.error,
      });
    }
    p.block.frames = frames;
    p.block.timings.totalMs = performance.now() - p.startedAt;
    return p.block;
  }

  /**
   * Encodes the prompt (ERR_PROMPT reaches the caller, not a block), then queues the switch for the
   * next block to start. Blocks keep coming while the encoder works (umt5 runs on its own thread):
   * the switch takes effect at the first block that starts after the context is ready.
   */
  async setPrompt(prompt: string): Promise<void> {
    const request = ++this.promptRequests;
    const context = await this.text.encode(prompt);
    if (request !== this.promptRequests || this.closed) return; // a later prompt was asked for meanwhile
    if (this.drawnOpening && this.blockIndex === 0) this.drawnOpening.latent = this.drawnOpening.scene.latentFor(prompt);
    this.nextPrompt = { prompt, context };
  }

  retune(cache: CacheRetune): void {
    this.nextCacheConfig = patchConfig(this.config, [{ cache }], 'cache retune').cache;
  }

  cacheView(): HeldFrame[] {
    return this.cache.held.map((h) => ({ ...h }));
  }

  engineInfo(): EngineInfo {
    return this.engine.info();
  }

  decoderBackend(): DecoderBackend | null {
    return this.decoder ? { ...this.decoder.backend } : null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Drain: the block in flight, its clean pass, and the decodes not yet handed out.
    await this.running;
    await this.cleaning.catch(() => undefined);
    await this.handedOut;
    await this.decoder?.close();
    if (this.ownsEngine) await this.engine.close();
    if (this.ownsText) await this.text.close?.();
  }

  private async timed<T>(work: Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await work;
    } finally {
      this.engineMs += performance.now() - t0;
    }
  }

  /**
   * The sigmas of the block being made at `steps` steps (undefined: the configured list). The first block opened from
   * noise takes them from generation.openingSteps (openingStepsOf), `steps` then counting its own steps: the scheduler
   * scales a stream's step count for it (StreamSpec.openingStepScale). With generation.blockStart previous-frame, whose
   * `steps` begin below 1000, a block that does not start from its previous frame (startsFromFrame) is denoised from
   * pure noise over openingSteps, or as many steps as `steps` from 1000.
   */
  private sigmasFor(steps: number | undefined, afterSwitch = false): number[] {
    const { generation } = this.config;
    const opening = this.blockIndex === 0 ? openingStepsOf(this.config) : null;
    if (opening) return warpedSigmas(stepsForCount(opening, steps ?? opening.length), generation.shift);
    if (generation.blockStart === 'previous-frame' && !this.startsFromFrame(afterSwitch)) {
      const fromNoise = generation.openingSteps ?? stepsFromNoise(generation.steps.length);
      return warpedSigmas(stepsForCount(fromNoise, steps ?? fromNoise.length), generation.shift);
    }
    if (steps === undefined || steps === generation.steps.length) return this.sigmas;
    return warpedSigmas(stepsForCount(generation.steps, steps), generation.shift);
  }

  /**
   * Whether the block being made starts from the last frame before it (generation.blockStart previous-frame): every
   * block but the first and the new prompt's first, which have no frame of theirs to start from.
   */
  private startsFromFrame(afterSwitch: boolean): boolean {
    return this.config.generation.blockStart === 'previous-frame' && this.blockIndex > 0 && !afterSwitch;
  }

  private async produceBlock(stepCount?: number): Promise<ProducedBlock> {
    if (this.closed) throw new SinkstreamError('ERR_CLOSED', 'the generator is closed');
    const failure = this.decodeFailure;
    if (failure) {
      const code = failure.error instanceof SinkstreamError ? failure.error.code : 'ERR_ENGINE';
      throw new SinkstreamError(code, `block ${this.blockIndex}: the decoder failed at block ${failure.block}: ${(failure.error as Error).message}`, { cause: failure.error });
    }
    const t0 = performance.now();
    this.engineMs = 0;
    // The first noise of this block is drawn while the previous block's clean pass runs in the engine.
    const cleanPass = this.cleaning;
    this.cleaning = Promise.resolve(0);
    const drawn = this.blockIndex === 0 ? this.drawnOpening : null;
    const F0 = this.config.generation.blockFrames;
    const { latentChannels: C0, latentHeight: H0, latentWidth: W0 } = this.dims;
    const firstNoise = drawn ? null : fillGaussianNoise(this.buffer('latentBuffer', C0 * F0 * H0 * W0), this.config.generation.seed, this.blockIndex, 0);
    // A block whose steps the engine loops takes every step's fresh noise at once: drawn here too, while the engine
    // works (for the step count asked now: a retune below that changes it draws them again).
    const stepNoises = firstNoise && this.config.cache.compression === 'none' && this.guidanceScale() === 1 && this.stepsInEngine()
      ? this.drawStepNoises(firstNoise.length, this.sigmasFor(stepCount).length)
      : undefined;
    this.engineMs += await cleanPass;
    this.applyRetune();

    const F = this.config.generation.blockFrames;
    const blockStart = this.blockIndex * F;

    const begun = this.cache.beginBlock(blockStart, F);
    let plan = begun.plan;
    await this.timed(this.engine.updateCache(begun.update));
    const switched = this.nextPrompt !== null;
    if (switched) await this.switchPrompt(this.nextPrompt!, plan);

    let x0: Float32Array;
    let steps = 0;
    if (drawn) {
      x0 = drawn.latent; // the drawn opening is used once and then dropped: no copy needed
      this.drawnOpening = null;
    } else {
      const sigmas = this.sigmasFor(stepCount, switched);
      steps = sigmas.length;
      if (this.startsFromFrame(switched)) startFromFrame(firstNoise!, this.frameLatents.get(blockStart - 1)!, F, H0 * W0, sigmas[0]);
      ({ x0, plan } = await this.denoise(firstNoise!, sigmas, plan, begun.compress, blockStart, stepNoises));
      this.checkFinite(x0, steps);
    }

    const block: FrameBlock = {
      index: this.blockIndex,
      firstFrame: this.firstFrameOf(this.blockIndex),
      width: this.width,
      height: this.height,
      frames: [],
      steps,
      timings: { totalMs: 0, engineMs: this.engineMs, decodeMs: 0 },
      cache: this.cacheView(),
      queryPositions: [...plan.queryPositions],
    };
    const decoding = this.startDecode(x0, block);

    this.pendingClean = { latent: x0, framePositions: Int32Array.from(plan.queryPositions), blockStart };
    this.blockIndex++;
    // The clean pass goes to the engine now, while the decode runs; the next block waits for it.
    const cleaning = this.runPendingClean();
    cleaning.catch(() => undefined); // surfaces in the next block (or is dropped by close)
    this.cleaning = cleaning;
    // While the clean pass runs (the cache takes the block in only once it is done).
    this.rememberLatents(x0, blockStart);
    return { block, decoding, startedAt: t0 };
  }

  /** Starts the block's decode (the decoder keeps its calls in order); records the first failure. */
  private startDecode(x0: Float32Array, block: FrameBlock): Promise<Uint8Array[]> {
    if (!this.decoder) return Promise.resolve([]);
    const d0 = performance.now();
    const decoding = this.decoder.decode(x0).then(
      (frames) => {
        block.timings.decodeMs = performance.now() - d0;
        return frames;
      },
      (error: unknown) => {
        this.decodeFailure ??= { block: block.index, error };
        throw error;
      },
    );
    decoding.catch(() => undefined); // handed to the caller by handOut, in order
    return decoding;
  }

  /**
   * A model that diverges (weights too large for float32, a numeric fault on the device) gives NaN
   * latents, which decode to a black video without any error: stop at the first such block instead.
   */
  private checkFinite(x0: Float32Array, steps: number): void {
    const at = firstNonFinite(x0);
    if (at < 0) return;
    throw new SinkstreamError(
      'ERR_ENGINE',
      `block ${this.blockIndex}: the denoised latent holds ${x0[at]} (element ${at} of ${x0.length}, after ${steps} steps of engine ${this.engine.name}); ` +
        'the model diverged: check the weights (model.weights) and the engine',
    );
  }

  /** The stream's array `name` of `size` values (a new one when it has none of that size). */
  private buffer(name: 'latentBuffer' | 'noiseBuffer' | 'flowBuffer' | 'uncondFlowBuffer', size: number): Float32Array {
    const b = this[name];
    if (b && b.length === size) return b;
    return (this[name] = new Float32Array(size));
  }

  /**
   * The block's denoising steps from its first noise: the sampler of `generation.sampler`. `firstNoise` becomes the
   * steps' latent, updated in place; x0 is kept only for the last step (in an array of its own: the clean pass, the
   * decode and the prompt switch's re-cache keep it), the others' only as the float32 value the next x is made of.
   */
  private async denoise(
    firstNoise: Float32Array,
    sigmas: number[],
    plan: BlockPlan,
    compress: boolean,
    blockStart: number,
    stepNoises: Float32Array | undefined,
  ): Promise<{ x0: Float32Array; plan: BlockPlan }> {
    const F = this.config.generation.blockFrames;
    const size = firstNoise.length;
    const seed = this.config.generation.seed;
    const steps = sigmas.length;
    if (!compress && this.guidanceScale() === 1 && this.stepsInEngine()) {
      await this.holdContext('prompt'); // an unguided block after a guided opening
      const x0 = new Float32Array(size);
      await this.timed(
        this.engine.denoiseSteps!({
          latent: firstNoise,
          framePositions: Int32Array.from(plan.queryPositions),
          sigmas,
          noises:
            this.config.generation.sampler === 'renoise' && steps > 1
              ? stepNoises?.length === (steps - 1) * size
                ? stepNoises
                : this.drawStepNoises(size, steps)
              : undefined,
          samplePrediction: this.dims.prediction === 'sample',
          sigmaFloor: SAMPLE_SIGMA_FLOOR,
          x0Into: x0,
        }),
      );
      return { x0, plan };
    }
    const x = firstNoise;
    let x0: Float32Array | undefined;
    for (let k = 0; k < steps; k++) {
      const sigma = sigmas[k];
      const compressNow = compress && k === 0;
      const request: ForwardRequest = {
        latent: x,
        timesteps: new Float32Array(F).fill(sigma * 1000),
        framePositions: Int32Array.from(plan.queryPositions),
        keepBlockKv: false,
        keepQueries: compressNow ? this.cache.reduce : 'none',
        flowInto: this.buffer('flowBuffer', size),
      };
      const scale = this.guidanceScale();
      if (scale === 1) await this.holdContext('prompt'); // an unguided block after a guided opening
      const pending = scale !== 1 ? this.guidedForward(request, scale) : this.timed(this.engine.forward(request));
      // The next step's fresh noise is drawn while the engine works (it runs off this thread: the call is made).
      const renoise = k < steps - 1 && this.config.generation.sampler === 'renoise';
      const nextNoise = renoise ? fillGaussianNoise(this.buffer('noiseBuffer', size), seed, this.blockIndex, k + 1) : null;
      const last = k === steps - 1 ? new Float32Array(size) : null; // the block's x0, allocated while the engine works
      const result = await pending;
      if (compressNow) ({ plan } = await this.compress(result.queriesId, blockStart, F));
      // A sample-predicting model's x0 becomes its flow here, once, after guidance (which is linear in either).
      const v = this.dims.prediction === 'sample' ? flowOfSampleInPlace(result.flow, x, sigma) : result.flow;
      if (last) x0 = denoisedInto(last, x, v, sigma);
      else if (nextNoise) renoiseInPlace(x, v, nextNoise, sigma, sigmas[k + 1]);
      else eulerInPlace(x, v, sigma, sigmas[k + 1]);
    }
    return { x0: x0 ?? new Float32Array(size), plan };
  }

  /** Whether blocks go to the engine's own step loop (engine.denoiseIn, where the engine has one). */
  private stepsInEngine(): boolean {
    return this.config.engine.denoiseIn === 'engine' && this.engine.denoiseSteps !== undefined;
  }

  /** The re-noise sampler's fresh noise of this block's steps 1 .. steps-1, one latent after another (one array, kept). */
  private drawStepNoises(size: number, steps: number): Float32Array | undefined {
    if (steps < 2 || this.config.generation.sampler !== 'renoise') return undefined;
    const all = this.stepNoiseBuffer?.length === (steps - 1) * size ? this.stepNoiseBuffer : new Float32Array((steps - 1) * size);
    this.stepNoiseBuffer = all;
    for (let k = 1; k < steps; k++) fillGaussianNoise(all.subarray((k - 1) * size, k * size), this.config.generation.seed, this.blockIndex, k);
    return all;
  }

  /** This block's guidance scale: the opening's for the first block, 1 when the stream does not guide. */
  private guidanceScale(): number {
    if (!this.guidance) return 1;
    return this.blockIndex === 0 ? this.guidance.openingScale : this.guidance.scale;
  }

  /**
   * One guided step: the prompt's forward and the unconditional one on the same request (latent, timesteps,
   * positions), the engine's prompt switched between them; the flow is v_uncond + g * (v_prompt - v_uncond), and
   * the queries kept (participative compression) are the prompt forward's. The two go in the order that starts
   * with the context the engine holds, so a step switches it once, not twice (the order changes no flow: neither
   * forward writes the cache).
   */
  private async guidedForward(request: ForwardRequest, scale: number): Promise<ForwardResult> {
    const uncondRequest: ForwardRequest = { ...request, keepQueries: 'none', flowInto: this.buffer('uncondFlowBuffer', request.latent.length) };
    let conditional: ForwardResult;
    let unconditional: ForwardResult;
    if (this.held === 'prompt') {
      conditional = await this.timed(this.engine.forward(request));
      await this.holdContext('uncond');
      unconditional = await this.timed(this.engine.forward(uncondRequest));
    } else {
      unconditional = await this.timed(this.engine.forward(uncondRequest));
      await this.holdContext('prompt');
      conditional = await this.timed(this.engine.forward(request));
    }
    return { ...conditional, flow: guidedFlowInPlace(unconditional.flow, conditional.flow, scale) };
  }

  /** Sets the engine's prompt to the stream's prompt or the unconditional context, if it holds the other. */
  private async holdContext(which: HeldContext): Promise<void> {
    if (this.held === which || !this.guidance) return;
    await this.timed(this.engine.setPrompt(which === 'prompt' ? this.promptContext : this.guidance.uncond));
    this.held = which;
  }

  /** The previous block's clean pass: its K/V become the pending rows the next plan takes in. Resolves to its engine ms. */
  private async runPendingClean(): Promise<number> {
    const pending = this.pendingClean;
    if (!pending) return 0;
    this.pendingClean = null;
    const F = this.config.generation.blockFrames;
    let ms = 0;
    const engineCall = async <T>(work: Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try {
        return await work;
      } finally {
        ms += performance.now() - t0;
      }
    };
    if (this.held !== 'prompt' && this.guidance) {
      await engineCall(this.engine.setPrompt(this.promptContext)); // the cache takes the block in under the prompt
      this.held = 'prompt';
    }
    const result = await engineCall(
      this.engine.forward({
        latent: pending.latent,
        timesteps: new Float32Array(F),
        framePositions: pending.framePositions,
        keepBlockKv: true,
        keepQueries: this.cache.reduce,
        flowInto: this.buffer('flowBuffer', pending.latent.length), // not read: the pass is for the cache
      }),
    );
    for (const old of this.cache.endBlock(pending.blockStart, F, result.queriesId)) await engineCall(this.engine.releaseQueries(old));
    return ms;
  }

  private async compress(firstStepQueries: number | undefined, blockStart: number, F: number) {
    if (firstStepQueries === undefined) throw new SinkstreamError('ERR_ENGINE', `engine ${this.engine.name} kept no queries for compression`);
    const { queries, reduce } = this.cache.scoreRequest(firstStepQueries);
    const scores = await this.timed(this.engine.scoreCache(queries, reduce));
    await this.timed(this.engine.releaseQueries(firstStepQueries));
    const step = this.cache.compress(scores, blockStart, F);
    await this.timed(this.engine.updateCache(step.update));
    return step;
  }

  private rememberLatents(x0: Float32Array, blockStart: number): void {
    const { latentChannels: C, latentHeight: H, latentWidth: W } = this.dims;
    const F = this.config.generation.blockFrames;
    const plane = H * W;
    for (let f = 0; f < F; f++) {
      const frame = new Float32Array(C * plane);
      for (let c = 0; c < C; c++) frame.set(x0.subarray((c * F + f) * plane, (c * F + f + 1) * plane), c * plane);
      this.frameLatents.set(blockStart + f, frame);
    }
    // Keep only frames the cache can still re-cache: those it holds, plus this block.
    const live = new Set(this.cache.held.map((h) => h.frame));
    for (let f = 0; f < F; f++) live.add(blockStart + f);
    for (const frame of this.frameLatents.keys()) if (!live.has(frame)) this.frameLatents.delete(frame);
  }

  private applyRetune(): void {
    if (!this.nextCacheConfig) return;
    this.config = { ...this.config, cache: this.nextCacheConfig };
    this.nextCacheConfig = null;
    this.cache = retuneStreamCache(this.cache, this.config);
  }

  /**
   * A prompt switch at the block's start, after its plan is applied: the new prompt's cross-attention
   * K/V, then the cache module's re-cache plan (src/cache/prompt-recache.ts), executed in order.
   */
  private async switchPrompt({ prompt, context }: { prompt: string; context: Float32Array }, plan: BlockPlan): Promise<void> {
    this.nextPrompt = null;
    await this.timed(this.engine.setPrompt(context));
    this.promptContext = context;
    this.held = 'prompt';
    this.config = { ...this.config, generation: { ...this.config.generation, prompt } };
    const recache = this.cache.planPromptRecache(plan, (frame) => this.frameLatents.has(frame));
    if (!recache) return;
    await this.timed(this.engine.updateCache(this.cache.apply(recache.keepSink)));
    const { frames, positions } = recache.rerun;
    await this.timed(
      this.engine.forward({
        latent: this.latentsOf(frames),
        timesteps: new Float32Array(frames.length),
        framePositions: Int32Array.from(positions),
        keepBlockKv: true,
        keepQueries: 'none',
      }),
    );
    this.cache.endRerun(recache);
    await this.timed(this.engine.updateCache(this.cache.apply(recache.restore)));
  }

  /** The kept clean latents of `frames`, as one block [C, n, H, W]. */
  private latentsOf(frames: number[]): Float32Array {
    const { latentChannels: C, latentHeight: H, latentWidth: W } = this.dims;
    const n = frames.length;
    const plane = H * W;
    const latent = new Float32Array(C * n * plane);
    frames.forEach((f, i) => {
      const frame = this.frameLatents.get(f)!;
      for (let c = 0; c < C; c++) latent.set(frame.subarray(c * plane, (c + 1) * plane), (c * n + i) * plane);
    });
    return latent;
  }
}
