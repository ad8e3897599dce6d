/**
 * The configuration schema: every key, its type and its default. Validated once at the boundary
 * (load.ts); the rest of the code receives a complete, typed `Config` and never checks again.
 */
import { z } from 'zod';
import { serveSection } from './sections/serve.js';
import { schedulerSection } from './sections/scheduler.js';
import { umt5TextKeys } from './sections/text-umt5.js';

const positiveInt = z.number().int().positive();

/** The transformer's shape (docs/model.md). The 1.3B model: dim 1536, layers 30, heads 12, ffnDim 8960. */
export const archSection = z
  .object({
    dim: positiveInt.default(128),
    layers: positiveInt.default(4),
    heads: positiveInt.default(2),
    ffnDim: positiveInt.default(512),
    freqDim: positiveInt.default(256),
    latentChannels: positiveInt.default(48),
    patch: z.tuple([positiveInt, positiveInt, positiveInt]).default([1, 2, 2]),
    textDim: positiveInt.default(64),
    textLen: positiveInt.default(16),
    eps: z.number().positive().default(1e-6),
    ropeTheta: z.number().positive().default(10000),
    /** Complex pairs of a head given to (frame, row, column); default: Wan's split of head_dim. */
    ropeSplit: z.tuple([positiveInt, positiveInt, positiveInt]).optional(),
    /** Size of the model's RoPE table: every temporal position stays below it. Wan: 1024. */
    ropeMaxPosition: positiveInt.default(1024),
    /**
     * What the head outputs: `flow` (v = noise - x0, as Wan predicts) or `sample` (the clean
     * latent x0 itself, "Back to Basics", Li & He 2025), which the loop turns into the flow (x - x0) / max(s, 0.05).
     */
    prediction: z.enum(['flow', 'sample']).default('flow'),
  })
  .strict();

export const modelSection = z
  .object({
    arch: archSection.prefault({}),
    /** Latent frame size in latent pixels (before patching). */
    latentHeight: positiveInt.default(16),
    latentWidth: positiveInt.default(16),
    /**
     * `synthetic` (seeded random weights) or a checkpoint: .safetensors, or a PyTorch .pt / .pth as
     * torch.save writes it (Self-Forcing, LongLive, Reward Forcing); Wan or diffusers key names.
     */
    weights: z.string().min(1).default('synthetic'),
    /**
     * .pt / .pth holding several models: the top-level entry of the generator. Default: `generator_ema`
     * when present (what the papers' inference loads), else `generator`, else the file is one state dict.
     */
    generatorKey: z.string().min(1).optional(),
    /** A LoRA merged into the weights at load time: PEFT (lora_A / lora_B), LongLive's lora.pt, or lora_down / lora_up. */
    lora: z.string().min(1).optional(),
    /** Multiplies the LoRA's update (after its alpha / rank scaling). */
    loraScale: z.number().default(1),
    /** The LoRA's alpha when neither the file (`.alpha` keys) nor an adapter_config.json beside it gives one; default: its rank (scale 1). */
    loraAlpha: z.number().positive().optional(),
    /**
     * Folder of the scene spec the model was trained on (palette.json, dynamics.json: the demo data's
     * colours, shapes, caption grammar and opening layouts); `generation.opening: scene` draws from it.
     */
    scene: z.string().min(1).optional(),
    syntheticSeed: z.number().int().nonnegative().default(0),
    /** Scale of synthetic weights' standard deviation (keeps deep random models numerically tame). */
    syntheticScale: z.number().positive().default(1),
  })
  .strict();

export const textSection = z
  .object({
    /**
     * `builtin`: word tokenizer + embedding table (small models); `precomputed`: a file of encoder
     * outputs; `umt5`: Wan2.1's umT5-XXL encoder run here (weights, tokenizer, arch, ... below).
     */
    encoder: z.enum(['builtin', 'precomputed', 'umt5']).default('builtin'),
    /** builtin: a JSON array of words; omitted = the built-in demo vocabulary. */
    vocab: z.string().optional(),
    /** precomputed: a .safetensors file holding `context` [textLen, textDim] (docs/text-embeddings.md). */
    path: z.string().optional(),
    /**
     * precomputed: a prompt the file has no context for is refused (`none`, ERR_PROMPT), or gets the
     * file's plain `context` (`default-context`).
     */
    fallback: z.enum(['none', 'default-context']).default('none'),
    ...umt5TextKeys,
  })
  .strict();

export const decoderSection = z
  .object({
    /**
     * `space-to-depth`: latents are pixels (parameter-free, exact); `taehv`: the tiny streaming decoder
     * (TAEHV, e.g. taew2_1); `wan-vae`: the Wan2.1 VAE's causal decoder; `onnx`: a user-exported decoder
     * graph (stateless); `none`: no pixels (DiT-only benchmarks of big shapes; `render` refuses it).
     */
    kind: z.enum(['space-to-depth', 'taehv', 'wan-vae', 'onnx', 'none']).default('space-to-depth'),
    /** space-to-depth: pixels per latent pixel along each side. latentChannels = 3 * factor^2. */
    factor: positiveInt.default(4),
    /** onnx: path to the decoder model. */
    path: z.string().optional(),
    /** taehv, wan-vae: the checkpoint (.pth / .safetensors), or `synthetic` (seeded weights at the real shape). */
    weights: z.string().default('synthetic'),
    /** taehv, wan-vae with synthetic weights: the seed. */
    syntheticSeed: z.number().int().nonnegative().default(0),
    /** taehv, wan-vae: compute precision. */
    dtype: z.enum(['float32', 'float16']).default('float32'),
    /** taehv, wan-vae: where the decoder runs; `auto` = the transformer's engine (ort cpu / webgpu, native). */
    runtime: z.enum(['auto', 'cpu', 'webgpu', 'native']).default('auto'),
    /** taehv: the decoder's size; the published taew2_1 (Wan2.1 latents) is the default. */
    taehv: z
      .object({
        /** Channels of its three stages and of the last conv's input (taew2_1: 256, 128, 64, 64); small values make test-sized decoders. */
        channels: z.tuple([positiveInt, positiveInt, positiveInt, positiveInt]).default([256, 128, 64, 64]),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const generationSection = z
  .object({
    prompt: z.string().min(1).default('a red circle and a blue square bouncing on a dark green background'),
    seed: z.number().int().nonnegative().default(0),
    /** Latent frames per block (Self-Forcing: 3). */
    blockFrames: positiveInt.default(3),
    /** Denoising timesteps before the shift warp, highest first (0 < t <= 1000). */
    steps: z.array(z.number().positive().max(1000)).min(1).default([1000, 750, 500, 250]),
    /**
     * Between steps: `renoise` (Self-Forcing: x0 re-noised with fresh noise, for distilled few-step
     * models) or `ode` (deterministic Euler step along the predicted flow, x += (s_next - s) * v,
     * for undistilled flow-matching models such as the bundled demo model).
     */
    sampler: z.enum(['renoise', 'ode']).default('renoise'),
    /** Timestep shift: s' = shift*s / (1 + (shift-1)*s). */
    shift: z.number().positive().default(5),
    /** Video frame rate of the output. */
    fps: z.number().positive().default(16),
    /**
     * How the first block is made: `noise` (generated from noise like every block) or `scene` (drawn
     * from the prompt by the model's scene spec, `model.scene`, then continued by the model: an
     * image-to-video opening for models that cannot open a video from noise, or to start from a known layout).
     */
    opening: z.enum(['noise', 'scene']).default('noise'),
    /**
     * Classifier-free guidance scale g: each denoising step runs the prompt's forward and the unconditional
     * one and samples along v_uncond + g * (v_prompt - v_uncond). 1 = off (one forward a step).
     */
    guidance: z.number().nonnegative().default(1),
    /**
     * The guidance scale of the first block when it is generated from noise (`opening: noise`), the one block made
     * with an empty cache, where the prompt alone places the objects; null: `guidance`. With `guidance: 1` only the
     * opening runs two forwards a step (the scheduler predicts the first block's job with them).
     */
    openingGuidance: z.number().nonnegative().nullable().default(null),
    /**
     * The first block's denoising timesteps when it is generated from noise (`opening: noise`), highest first, like
     * `steps`; null: `steps`. A few-step model opens with more of the prompted objects at more steps (the bundled
     * model: docs/demo-model.md); later blocks keep `steps`. When the scheduler lowers a stream's steps, the first block
     * keeps the same share of these.
     */
    openingSteps: z.array(z.number().positive().max(1000)).min(1).nullable().default(null),
    /**
     * How each block after the first starts its denoising: `noise` (pure noise) or `previous-frame` (the last frame of
     * the block before, repeated over the block's frames and noised to the first step's level s0: x = (1 - s0) * frame +
     * s0 * noise), so that a block continues the picture it follows instead of drawing it again; `steps` then begins
     * below 1000 (at 1000 the frame has no weight). The first block, and the first after a prompt switch, start from pure
     * noise over generation.openingSteps (null: as many steps as `steps`, evenly spaced from 1000).
     */
    blockStart: z.enum(['noise', 'previous-frame']).default('noise'),
    /** The unconditional forward's prompt when guidance != 1; empty: the empty prompt (an all-zero context). */
    negativePrompt: z.string().default(''),
  })
  .strict();

export const participativeSection = z
  .object({
    /** Frames' worth of tokens kept after compression (sink + top-C + recent). Deep Forcing: 16. */
    budget: positiveInt.default(16),
    /** Recent frames always kept (current block and the frames just before it). Deep Forcing: 4. */
    recent: positiveInt.default(4),
    /** How a candidate key's score aggregates the recent queries. */
    score: z.enum(['sum', 'max']).default('sum'),
    /** Re-phase the kept tokens' frame positions (paper eq. 10-11); off by default (docs/cache-policies.md). */
    rephase: z.boolean().default(false),
  })
  .strict();

export const sparseSection = z
  .object({
    /**
     * Far frames keep 1 of every `stride` tokens, `stride` of them packed into one frame's worth of
     * keys (docs/cache-policies.md, sparse attention); 1 = off (every frame dense).
     */
    stride: positiveInt.default(1),
    /** Most recent cached frames kept dense, the block not counted (at least generation.blockFrames). */
    denseFrames: z.number().int().nonnegative().default(3),
  })
  .strict();

export const cacheSection = z
  .object({
    policy: z.enum(['window', 'sink', 'deep-sink', 'ema-sink']).default('sink'),
    /** Latent frames one block's queries may attend to, counting sink, history and the block itself. */
    window: positiveInt.default(12),
    /** Sink frames (or EMA sink slots). Ignored by `window`. */
    sink: z.number().int().nonnegative().default(3),
    /** sink policy: `absolute` (Self-Forcing/LongLive) or `cache` (StreamingLLM re-indexing). */
    positions: z.enum(['absolute', 'cache']).default('absolute'),
    /** ema-sink: sink = alpha*sink + (1-alpha)*evicted. Reward Forcing's paper: 0.99. */
    emaAlpha: z.number().gt(0).lt(1).default(0.99),
    compression: z.enum(['none', 'participative']).default('none'),
    participative: participativeSection.prefault({}),
    sparse: sparseSection.prefault({}),
  })
  .strict();

export const engineSection = z
  .object({
    name: z.enum(['ort', 'native']).default('ort'),
    provider: z.enum(['cpu', 'webgpu']).default('cpu'),
    /** GPU index (native engine). */
    device: z.number().int().nonnegative().default(0),
    /** Intra-op threads for the CPU provider; 0 = all cores. */
    threads: z.number().int().nonnegative().default(0),
    /**
     * CPU provider: idle ONNX Runtime threads spin-wait for the next run (ONNX Runtime's own default)
     * instead of sleeping. Off: spinning threads take the cores the loop's main thread needs.
     */
    allowSpinning: z.boolean().default(false),
    /**
     * Weight / activation precision on GPU providers. The CPU provider always runs float32. `fp8` (native engine,
     * Hopper or newer): float16's bf16 path with the products that read a normalised row (q/k/v, cross-attention's
     * q, the feed-forward's two) in FP8 (E4M3, a scale per token row and per weight row). Faster, not exact:
     * docs/native.md gives its measured error.
     */
    dtype: z.enum(['float32', 'float16', 'fp8']).default('float32'),
    /**
     * Self-attention over the cache: `exact` at engine.dtype's precision; `fp8` = queries, keys and values quantised
     * to FP8 (E4M3, one scale per tensor from its largest value) and attended by cuDNN's fused FP8 attention (native
     * engine, engine.dtype float16 or fp8, Hopper or newer GPUs). Faster, not exact: docs/native.md gives its measured error.
     */
    attention: z.enum(['exact', 'fp8']).default('exact'),
    /**
     * Native engine, bf16 path (engine.dtype float16 or fp8): the kernel self-attention runs on. `auto` = exact
     * attention on the engine's own Hopper kernel (wgmma and TMA, docs/native.md) on a Hopper GPU for models with
     * head_dim 128, else cuDNN's fused attention; FP8 attention (engine.attention fp8) on cuDNN's, measured faster;
     * `cudnn` = cuDNN's fused attention (for exact attention the own FlashAttention-2-style kernel where cuDNN is
     * missing); `hopper` = the own Hopper kernels for exact and FP8 attention, an error where they cannot run.
     */
    attentionKernel: z.enum(['auto', 'cudnn', 'hopper']).default('auto'),
    /**
     * WebGPU provider: keep the K/V cache (and the prompt's cross K/V) on the GPU between calls;
     * false sends it through the host on every call (slower; a fallback for drivers that fail).
     */
    residentCache: z.boolean().default(true),
    /**
     * Pipeline stages: the transformer's layers split into this many contiguous ranges, the hidden state
     * passed from stage to stage. ort: each stage on its own thread; native: each stage on its own GPU.
     */
    stages: positiveInt.default(1),
    /** Layers per stage, first to last (default: as equal as the layer count allows). */
    stageLayers: z.array(positiveInt).min(1).optional(),
    /** GPU of each stage, first to last (native engine; default: engine.device, engine.device + 1, ...). */
    devices: z.array(z.number().int().nonnegative()).min(1).optional(),
    /**
     * serve with several GPUs (engine.devices, or engine.stages GPUs from engine.device): `pipeline` = each
     * stream's engine spans them, a stage per GPU; `replicas` = each stream's engine holds the whole model on
     * one GPU, the one the scheduler chooses (the least loaded lane); `auto` = the scheduler picks from both
     * setups' calibrated costs (docs/scheduler.md). Native engine only for replicas and auto.
     */
    placement: z.enum(['pipeline', 'replicas', 'auto']).default('pipeline'),
    /**
     * At engine start, one forward at every cache size the stream will attend (and a decode), so plans
     * built on first use (the native engine's cuDNN attention) are not paid in the first blocks.
     * Default: on for the native engine, off otherwise.
     */
    warmup: z.boolean().optional(),
    /**
     * Native engine: CUDA graphs for forwards whose shape repeats (captured on a shape's second forward, replayed
     * after; the host issues one launch per forward). `auto` = on for the bf16 path (engine.dtype float16 or fp8) on one
     * GPU; `on` = also for float32; `off` = direct launches. Engines over several GPUs (engine.stages > 1) never use
     * them. A capture that fails falls back to direct launches, said once.
     */
    cudaGraphs: z.enum(['auto', 'on', 'off']).default('auto'),
    /**
     * Where a block's denoising steps are looped: `engine` = in one engine call where the engine can (the native
     * engine runs the forwards back to back from C with the latent kept on the GPU and the sampler's step as a kernel
     * between them, no JavaScript in between; the same bits), `generator` = one engine call a step. Blocks with
     * classifier-free guidance or participative compression always take one call a step.
     */
    denoiseIn: z.enum(['engine', 'generator']).default('engine'),
    /**
     * Streams of one process whose forwards are due together (same block shape, issued in the same turn of the event
     * loop) run as one batched engine call of up to this many streams (the native engine: one forward over all their
     * rows, attention per stream; other engines: each stream's own forward). 1 = every stream's forward alone.
     */
    maxBatch: z.number().int().min(1).max(64).default(1),
  })
  .strict();

export const outputSection = z
  .object({
    path: z.string().min(1).default('out.mp4'),
    /** Length of a render when neither --seconds nor --frames is given. */
    seconds: z.number().positive().default(4),
    /** x264 constant rate factor (0-51, lower = better). */
    crf: z.number().int().min(0).max(51).default(18),
    preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow']).default('veryfast'),
    /** Seconds between keyframes (also the fMP4 fragment cadence). */
    keyframeSeconds: z.number().positive().max(10).default(1),
  })
  .strict();

export const configSchema = z
  .object({
    model: modelSection.prefault({}),
    text: textSection.prefault({}),
    decoder: decoderSection.prefault({}),
    generation: generationSection.prefault({}),
    cache: cacheSection.prefault({}),
    engine: engineSection.prefault({}),
    output: outputSection.prefault({}),
    serve: serveSection.prefault({}),
    scheduler: schedulerSection.prefault({}),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ArchConfig = Config['model']['arch'];
export type CacheConfig = Config['cache'];
export type EngineConfig = Config['engine'];
