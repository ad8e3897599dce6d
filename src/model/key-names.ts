/**
 * Checkpoint key names -> canonical (original Wan) names, for the two namings in the wild:
 *   - original Wan / CausVid / Self-Forcing / Reward Forcing: `blocks.0.self_attn.q.weight`, optionally
 *     under `model.` and a `generator.` / `generator_ema.` wrapper (Self-Forcing's .pt, saved as
 *     safetensors), or `module.` / `_orig_mod.` (DDP, torch.compile);
 *   - diffusers `WanTransformer3DModel` (scripts/convert_wan_to_diffusers.py in diffusers):
 *     `blocks.0.attn1.to_q.weight`, `condition_embedder.*`, `scale_shift_table`, `proj_out`, with
 *     norm2 and norm3 swapped (diffusers' norm2 is Wan's affine cross-attention norm `norm3`).
 * When both `generator.` and `generator_ema.` are present, the EMA weights are used (what
 * Self-Forcing's inference loads with --use_ema) and the other set is ignored.
 */
import { SinkstreamError } from '../errors.js';
import { TEXT_ENCODER_KEYS } from './expected-shapes.js';

export type KeyNaming = 'wan' | 'diffusers';

/** diffusers name fragment -> Wan name fragment, applied to the part after `blocks.N.` or at top level. */
const DIFFUSERS_BLOCK_RULES: Array<[RegExp, string]> = [
  [/^attn1\.to_q\./, 'self_attn.q.'],
  [/^attn1\.to_k\./, 'self_attn.k.'],
  [/^attn1\.to_v\./, 'self_attn.v.'],
  [/^attn1\.to_out\.0\./, 'self_attn.o.'],
  [/^attn1\.norm_q\./, 'self_attn.norm_q.'],
  [/^attn1\.norm_k\./, 'self_attn.norm_k.'],
  [/^attn2\.to_q\./, 'cross_attn.q.'],
  [/^attn2\.to_k\./, 'cross_attn.k.'],
  [/^attn2\.to_v\./, 'cross_attn.v.'],
  [/^attn2\.to_out\.0\./, 'cross_attn.o.'],
  [/^attn2\.norm_q\./, 'cross_attn.norm_q.'],
  [/^attn2\.norm_k\./, 'cross_attn.norm_k.'],
  [/^norm2\./, 'norm3.'],
  [/^ffn\.net\.0\.proj\./, 'ffn.0.'],
  [/^ffn\.net\.2\./, 'ffn.2.'],
  [/^scale_shift_table$/, 'modulation'],
];

const DIFFUSERS_TOP_RULES: Array<[RegExp, string]> = [
  [/^condition_embedder\.time_embedder\.linear_1\./, 'time_embedding.0.'],
  [/^condition_embedder\.time_embedder\.linear_2\./, 'time_embedding.2.'],
  [/^condition_embedder\.time_proj\./, 'time_projection.1.'],
  [/^condition_embedder\.text_embedder\.linear_1\./, 'text_embedding.0.'],
  [/^condition_embedder\.text_embedder\.linear_2\./, 'text_embedding.2.'],
  [/^proj_out\./, 'head.head.'],
  [/^scale_shift_table$/, 'head.modulation'],
  [/^patch_embedding\./, 'patch_embedding.'],
];

/** Wan block-level suffixes (after `blocks.N.`). */
const WAN_BLOCK_KEY = /^(self_attn|cross_attn)\.(q|k|v|o)\.(weight|bias)$|^(self_attn|cross_attn)\.norm_[qk]\.weight$|^norm3\.(weight|bias)$|^ffn\.[02]\.(weight|bias)$|^modulation$/;
const WAN_TOP_KEY = /^(patch_embedding|text_embedding\.[02]|time_embedding\.[02]|time_projection\.1|head\.head)\.(weight|bias)$|^head\.modulation$/;

/** Keys that carry no weights the runtime uses and are skipped silently. */
const IGNORABLE = [
  /(^|\.)freqs$/, // Wan RoPE table, recomputed
  /^rope\./, // diffusers RoPE buffers (non-persistent, but some exports keep them)
  /\.norm_added_q\./, // diffusers: listed in _keys_to_ignore_on_load_unexpected
];

/** Keys that mean "this checkpoint needs something the runtime does not do" (named in the error). */
const REFUSED: Array<[RegExp, string]> = [
  [/lora_(A|B|up|down)|\.lora\.|\.alpha$/, 'a LoRA adapter (give it as model.lora, applied to the base weights at load, or merge it with `sinkstream convert --lora`)'],
  [/img_emb|image_embedder|k_img|v_img|norm_k_img|add_k_proj|add_v_proj/, 'an image-conditioning (I2V / FLF2V) branch, which this text-to-video runtime does not run'],
];

/** Canonical key for one Wan-named key after wrappers are stripped, or null when it is not a Wan key. */
function wanCanonical(key: string): string | null {
  if (TEXT_ENCODER_KEYS.has(key)) return key;
  if (WAN_TOP_KEY.test(key)) return key;
  const m = /^blocks\.(\d+)\.(.+)$/.exec(key);
  if (m && WAN_BLOCK_KEY.test(m[2])) return key;
  return null;
}

function diffusersCanonical(key: string): string | null {
  const m = /^blocks\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    for (const [re, to] of DIFFUSERS_BLOCK_RULES) {
      if (re.test(m[2])) return `blocks.${m[1]}.${m[2].replace(re, to)}`;
    }
    return null;
  }
  for (const [re, to] of DIFFUSERS_TOP_RULES) if (re.test(key)) return key.replace(re, to);
  return null;
}

/** Whether the keys look diffusers-named (any key only diffusers uses). */
export function detectNaming(keys: Iterable<string>): KeyNaming {
  for (const k of keys) {
    const bare = stripWrappers(k);
    if (/(^|\.)(attn1|attn2|condition_embedder|proj_out|scale_shift_table)(\.|$)/.test(bare)) return 'diffusers';
  }
  return 'wan';
}

/** Wrapper modules' names inside a key: FSDP, activation checkpointing, torch.compile (`blocks.0._checkpoint_wrapped_module.ffn`). */
const INNER_WRAPPERS = /(^|\.)(?:_fsdp_wrapped_module|_checkpoint_wrapped_module|_orig_mod)\./g;

export function stripWrappers(key: string): string {
  let k = key.replace(INNER_WRAPPERS, '$1');
  for (;;) {
    const next = k.replace(/^(generator_ema\.|generator\.|module\.|_orig_mod\.|model\.|diffusion_model\.)/, '');
    if (next === k) return k;
    k = next;
  }
}

export interface KeyMapping {
  naming: KeyNaming;
  /** source key -> canonical key */
  toCanonical: Map<string, string>;
  /** Source keys skipped on purpose (RoPE buffers, the non-EMA generator when EMA is present, ...). */
  ignored: string[];
}

/**
 * Maps every key of a checkpoint to its canonical name. An unknown key is an ERR_MODEL_SHAPE error
 * naming it (so a wrong file is never half-loaded); a LoRA or image branch is refused with the reason.
 */
export function mapKeys(sourceKeys: Iterable<string>, file = 'the checkpoint', shapeOf?: (key: string) => readonly number[] | undefined): KeyMapping {
  const keys = [...sourceKeys];
  const hasEma = keys.some((k) => /^(module\.)?generator_ema\./.test(k));
  const naming = detectNaming(keys);
  const toCanonical = new Map<string, string>();
  const ignored: string[] = [];
  const sourceOf = new Map<string, string>();

  for (const key of keys) {
    if (hasEma && /^(module\.)?generator\./.test(key)) {
      ignored.push(key);
      continue;
    }
    const bare = stripWrappers(key);
    if (IGNORABLE.some((re) => re.test(bare))) {
      ignored.push(key);
      continue;
    }
    for (const [re, what] of REFUSED) {
      if (re.test(bare)) {
        throw new SinkstreamError('ERR_MODEL_SHAPE', `${file}: key '${key}' belongs to ${what}.`);
      }
    }
    const canonical = naming === 'diffusers' ? diffusersCanonical(bare) ?? wanCanonical(bare) : wanCanonical(bare);
    if (canonical === null) {
      throw new SinkstreamError(
        'ERR_MODEL_SHAPE',
        `${file}: unknown key '${key}'${shapeText(shapeOf?.(key))} (neither a Wan nor a diffusers WanTransformer3DModel weight name: ` +
          `a checkpoint of another architecture?; ` +
          `expected e.g. 'blocks.0.self_attn.q.weight' or 'blocks.0.attn1.to_q.weight').`,
      );
    }
    const previous = sourceOf.get(canonical);
    if (previous !== undefined) {
      throw new SinkstreamError('ERR_MODEL_SHAPE', `${file}: keys '${previous}' and '${key}' both map to '${canonical}'.`);
    }
    sourceOf.set(canonical, key);
    toCanonical.set(key, canonical);
  }
  return { naming, toCanonical, ignored };
}

function shapeText(shape: readonly number[] | undefined): string {
  return shape ? ` of shape [${shape.join(', ')}]` : '';
}

/** Canonical Wan key -> diffusers name (the inverse mapping; used to write diffusers-named files). */
export function toDiffusersKey(canonical: string): string {
  const m = /^blocks\.(\d+)\.(.+)$/.exec(canonical);
  if (m) {
    const rest = m[2]
      .replace(/^self_attn\.o\./, 'attn1.to_out.0.')
      .replace(/^cross_attn\.o\./, 'attn2.to_out.0.')
      .replace(/^self_attn\.(q|k|v)\./, 'attn1.to_$1.')
      .replace(/^cross_attn\.(q|k|v)\./, 'attn2.to_$1.')
      .replace(/^self_attn\.(norm_[qk])\./, 'attn1.$1.')
      .replace(/^cross_attn\.(norm_[qk])\./, 'attn2.$1.')
      .replace(/^norm3\./, 'norm2.')
      .replace(/^ffn\.0\./, 'ffn.net.0.proj.')
      .replace(/^ffn\.2\./, 'ffn.net.2.')
      .replace(/^modulation$/, 'scale_shift_table');
    return `blocks.${m[1]}.${rest}`;
  }
  return canonical
    .replace(/^time_embedding\.0\./, 'condition_embedder.time_embedder.linear_1.')
    .replace(/^time_embedding\.2\./, 'condition_embedder.time_embedder.linear_2.')
    .replace(/^time_projection\.1\./, 'condition_embedder.time_proj.')
    .replace(/^text_embedding\.0\./, 'condition_embedder.text_embedder.linear_1.')
    .replace(/^text_embedding\.2\./, 'condition_embedder.text_embedder.linear_2.')
    .replace(/^head\.head\./, 'proj_out.')
    .replace(/^head\.modulation$/, 'scale_shift_table');
}
