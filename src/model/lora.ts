/**
 * LoRA adapters merged into the transformer's linear weights: W += scale * (alpha / rank) * B @ A,
 * A [rank, in] (`lora_A` / `lora_down`), B [out, rank] (`lora_B` / `lora_up`).
 *
 * Files read: a PEFT adapter (a directory with adapter_model.safetensors or .bin and
 * adapter_config.json, or that file alone), LongLive's lora.pt (`{'generator_lora': peft state dict,
 * 'critic_lora': ...}`, keys `base_model.model.blocks.N.self_attn.q.lora_A.weight`; LongLive's alpha
 * equals its rank, 256), and ComfyUI / kohya-style dotted files (`diffusion_model.blocks.N...lora_down.weight`
 * with optional `.alpha` scalars). Module names go through the same mapping as checkpoint keys, so Wan and
 * diffusers names both work. Alpha: a module's stored `.alpha`, else adapter_config.json's `lora_alpha`
 * (`use_rslora`: alpha / sqrt(rank)), else the configured default, else the rank (scale 1).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SinkstreamError } from '../errors.js';
import { formatShape } from './expected-shapes.js';
import { mapKeys } from './key-names.js';
import { openCheckpoint, type CheckpointReader } from './torch-checkpoint.js';
import type { ModelWeights, WeightTensor } from './weights.js';

export interface LoraModule {
  /** The module's name as the file spells it (e.g. `base_model.model.blocks.0.self_attn.q`). */
  source: string;
  /** The canonical weight it updates (e.g. `blocks.0.self_attn.q.weight`). */
  target: string;
  /** Key of its A tensor in the file (named in errors). */
  downKey: string;
  down: WeightTensor;
  up: WeightTensor;
  /** Its stored alpha, when the file has one. */
  alpha?: number;
}

export interface LoraAdapter {
  path: string;
  modules: LoraModule[];
  /** adapter_config.json's lora_alpha, when there is one. */
  configAlpha?: number;
  rslora: boolean;
}

export interface LoraOptions {
  /** Multiplies the update. Default 1. */
  scale?: number;
  /** Alpha when neither the file nor its adapter_config.json gives one. Default: the rank. */
  alpha?: number;
}

const PAIR_KEY = /^(.+)\.(lora_A|lora_B|lora_down|lora_up)(?:\.default)?\.weight$/;
const ALPHA_KEY = /^(.+)\.alpha$/;
/** Prefixes of LoRA module names that are not part of the transformer's own names. */
const LORA_PREFIXES = /^(?:base_model\.model\.|transformer\.|unet\.)+/;

function fileError(file: string, what: string): SinkstreamError {
  return new SinkstreamError('ERR_MODEL_FILE', `${file}: ${what}`);
}

interface AdapterConfig {
  alpha?: number;
  rslora: boolean;
}

function readAdapterConfig(file: string): AdapterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw fileError(file, `cannot read the adapter config (${(e as Error).message})`);
  }
  const cfg = raw as { lora_alpha?: unknown; use_rslora?: unknown; peft_type?: unknown; use_dora?: unknown };
  if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') throw fileError(file, `peft_type ${JSON.stringify(cfg.peft_type)}; only LORA adapters are merged`);
  if (cfg.use_dora === true) throw fileError(file, 'a DoRA adapter (use_dora); only plain LoRA is merged');
  return { alpha: typeof cfg.lora_alpha === 'number' ? cfg.lora_alpha : undefined, rslora: cfg.use_rslora === true };
}

/** The weights file and adapter config of a LoRA path (a PEFT directory or a single file). */
function locate(loraPath: string): { weights: string; config?: string } {
  let isDir = false;
  try {
    isDir = statSync(loraPath).isDirectory();
  } catch (e) {
    throw fileError(loraPath, `cannot open the LoRA (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (isDir) {
    const weights = ['adapter_model.safetensors', 'adapter_model.bin'].map((n) => path.join(loraPath, n)).find((p) => existsSync(p));
    if (!weights) throw fileError(loraPath, 'a directory without adapter_model.safetensors or adapter_model.bin (expected a PEFT adapter)');
    const config = path.join(loraPath, 'adapter_config.json');
    return { weights, config: existsSync(config) ? config : undefined };
  }
  const beside = path.join(path.dirname(loraPath), 'adapter_config.json');
  const peftNamed = path.basename(loraPath).startsWith('adapter_model');
  return { weights: loraPath, config: peftNamed && existsSync(beside) ? beside : undefined };
}

async function scalarOf(reader: CheckpointReader, key: string): Promise<number> {
  const t = await reader.read(key);
  if (t.data.length !== 1) throw fileError(reader.path, `LoRA key '${key}' has shape ${formatShape(t.shape)}, expected a scalar alpha`);
  return t.data[0];
}

/** Reads a LoRA: its A / B pairs under the canonical weight each updates. */
export async function readLora(loraPath: string): Promise<LoraAdapter> {
  const { weights, config } = locate(loraPath);
  const adapterConfig = config ? readAdapterConfig(config) : { rslora: false };
  const reader = await openCheckpoint(weights);
  try {
    let keys = reader.keys();
    let prefix = '';
    // LongLive: {'generator_lora': {...}, 'critic_lora': {...}}; only the generator's adapter applies.
    if (keys.some((k) => k.startsWith('generator_lora.'))) prefix = 'generator_lora.';
    keys = keys.filter((k) => k.startsWith(prefix));

    const pairs = new Map<string, { down?: string; up?: string; alpha?: string }>();
    for (const key of keys) {
      const bare = key.slice(prefix.length);
      const pair = PAIR_KEY.exec(bare);
      const alpha = ALPHA_KEY.exec(bare);
      const module = pair?.[1] ?? alpha?.[1];
      if (module === undefined) {
        throw fileError(
          weights,
          `key '${key}' is not a LoRA weight (expected '<module>.lora_A.weight' / '.lora_B.weight', '.lora_down.weight' / '.lora_up.weight' or '<module>.alpha'; DoRA magnitudes and embedding adapters are not merged)`,
        );
      }
      const entry = pairs.get(module) ?? {};
      if (pair) {
        if (pair[2] === 'lora_A' || pair[2] === 'lora_down') entry.down = key;
        else entry.up = key;
      } else {
        entry.alpha = key;
      }
      pairs.set(module, entry);
    }
    if (pairs.size === 0) throw fileError(weights, 'holds no LoRA weights');

    const modules: LoraModule[] = [];
    for (const [module, entry] of pairs) {
      if (!entry.down || !entry.up) {
        throw fileError(weights, `LoRA module '${module}' has ${entry.down ? 'lora_A / lora_down' : entry.up ? 'lora_B / lora_up' : 'an alpha'} but no ${entry.down ? 'lora_B / lora_up' : 'lora_A / lora_down'}`);
      }
      const target = canonicalTarget(module, weights, entry.down);
      modules.push({
        source: module,
        target,
        downKey: entry.down,
        down: await reader.read(entry.down),
        up: await reader.read(entry.up),
        alpha: entry.alpha ? await scalarOf(reader, entry.alpha) : undefined,
      });
    }
    return { path: loraPath, modules, configAlpha: adapterConfig.alpha, rslora: adapterConfig.rslora };
  } finally {
    await reader.close();
  }
}

function canonicalTarget(module: string, file: string, key: string): string {
  const weightKey = `${module.replace(LORA_PREFIXES, '')}.weight`;
  try {
    const [canonical] = mapKeys([weightKey], file).toCanonical.values();
    if (canonical !== undefined && canonical.endsWith('.weight')) return canonical;
  } catch {
    // reported below
  }
  throw new SinkstreamError('ERR_MODEL_SHAPE', `${file}: LoRA key '${key}' targets '${weightKey}', which is not a linear weight of the Wan transformer (a LoRA for another model?)`);
}

/**
 * Checks every module of `lora` against the base weights' shapes (`shapeOf`: canonical key -> shape, or
 * undefined when the model has no such weight): ERR_MODEL_SHAPE naming the first LoRA key that does not fit.
 */
export function checkLora(lora: LoraAdapter, shapeOf: (key: string) => readonly number[] | undefined): void {
  for (const m of lora.modules) {
    const shape = shapeOf(m.target);
    const shapeError = (what: string): SinkstreamError =>
      new SinkstreamError('ERR_MODEL_SHAPE', `${lora.path}: LoRA key '${m.downKey}' does not match the base weights: ${what}`);
    if (!shape) throw shapeError(`the model has no '${m.target}' (more layers than model.arch.layers, or a LoRA for another model?)`);
    if (shape.length !== 2) throw shapeError(`'${m.target}' has shape ${formatShape(shape)}; only linear weights take a LoRA`);
    const [out, inp] = shape;
    const rank = m.down.shape[0];
    if (m.down.shape.length !== 2 || m.down.shape[1] !== inp) {
      throw shapeError(`its A has shape ${formatShape(m.down.shape)}, base '${m.target}' is ${formatShape(shape)} (expected A [rank, ${inp}])`);
    }
    if (m.up.shape.length !== 2 || m.up.shape[0] !== out || m.up.shape[1] !== rank) {
      throw shapeError(`its B has shape ${formatShape(m.up.shape)}, expected [${out}, ${rank}] for base ${formatShape(shape)} and rank ${rank}`);
    }
  }
}

/** Adds the updates of `lora` that target `key` to `weight` (in place); `checkLora` has passed. */
export function mergeLoraInto(key: string, weight: WeightTensor, lora: LoraAdapter, options: LoraOptions = {}): void {
  for (const m of lora.modules) {
    if (m.target !== key) continue;
    const [out, inp] = weight.shape;
    const rank = m.down.shape[0];
    const alpha = m.alpha ?? lora.configAlpha ?? options.alpha ?? rank;
    const scale = (options.scale ?? 1) * (lora.rslora ? alpha / Math.sqrt(rank) : alpha / rank);
    addLowRank(weight.data, m.up.data, m.down.data, out, inp, rank, scale);
  }
}

/** Merges `lora` into `weights` in place; every module must match its base weight. */
export function applyLora(weights: ModelWeights, lora: LoraAdapter, options: LoraOptions = {}): void {
  checkLora(lora, (key) => weights.get(key)?.shape);
  for (const [key, weight] of weights) mergeLoraInto(key, weight, lora, options);
}

/** w[out, inp] += scale * up[out, rank] @ down[rank, inp], row by row (an axpy per rank). */
function addLowRank(w: Float32Array, up: Float32Array, down: Float32Array, out: number, inp: number, rank: number, scale: number): void {
  const row = new Float64Array(inp);
  for (let i = 0; i < out; i++) {
    row.fill(0);
    for (let r = 0; r < rank; r++) {
      const b = up[i * rank + r];
      if (b === 0) continue;
      const d = r * inp;
      for (let j = 0; j < inp; j++) row[j] += b * down[d + j];
    }
    const o = i * inp;
    for (let j = 0; j < inp; j++) w[o + j] += scale * row[j];
  }
}
