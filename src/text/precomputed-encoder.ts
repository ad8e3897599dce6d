/**
 * Text contexts computed elsewhere (e.g. umT5-XXL for real Wan checkpoints) and stored in a
 * .safetensors file (docs/text-embeddings.md): `context` [rows, textDim] and/or `context.<name>`,
 * rows <= textLen (zero-padded here), an optional leading batch dim of 1. A prompt gets
 * `context.<prompt>`, or `context` when the file's `__metadata__.prompt` is that prompt; any other
 * prompt is ERR_PROMPT, unless `text.fallback: default-context` gives it the plain `context`.
 */
import { SinkstreamError } from '../errors.js';
import { formatShape } from '../model/expected-shapes.js';
import { SafetensorsFile } from '../model/safetensors.js';
import type { PromptEncoder } from './prompt-encoder.js';

export interface PrecomputedOptions {
  /** What a prompt without its own context gets: refused (`none`, the default) or the plain `context`. */
  fallback?: 'none' | 'default-context';
}

export class PrecomputedPromptEncoder implements PromptEncoder {
  readonly kind = 'precomputed' as const;

  private constructor(
    readonly path: string,
    readonly textLen: number,
    readonly textDim: number,
    private readonly contexts: Map<string, Float32Array>,
    /** The prompt the plain `context` was made from (`__metadata__.prompt`), if recorded. */
    private readonly defaultPrompt: string | undefined,
    private readonly fallback: 'none' | 'default-context',
  ) {}

  static async open(path: string, textLen: number, textDim: number, options: PrecomputedOptions = {}): Promise<PrecomputedPromptEncoder> {
    const file = await SafetensorsFile.open(path);
    try {
      const contexts = new Map<string, Float32Array>();
      for (const name of file.keys()) {
        if (name !== 'context' && !name.startsWith('context.')) continue;
        const entry = file.entries.get(name)!;
        const shape = entry.shape[0] === 1 && entry.shape.length === 3 ? entry.shape.slice(1) : entry.shape;
        if (shape.length !== 2 || shape[1] !== textDim || shape[0] > textLen) {
          throw new SinkstreamError(
            'ERR_MODEL_SHAPE',
            `${path}: tensor '${name}' has shape ${formatShape(entry.shape)}, expected [rows <= ${textLen}, ${textDim}] (model.arch.textLen, model.arch.textDim)`,
          );
        }
        const { data } = await file.read(name);
        const padded = new Float32Array(textLen * textDim);
        padded.set(data);
        contexts.set(name === 'context' ? '' : name.slice('context.'.length), padded);
      }
      if (contexts.size === 0) {
        throw new SinkstreamError('ERR_MODEL_FILE', `${path}: no tensor named 'context' or 'context.<name>' (found: ${file.keys().join(', ') || 'none'})`);
      }
      const recorded = file.metadata.prompt;
      return new PrecomputedPromptEncoder(path, textLen, textDim, contexts, typeof recorded === 'string' ? recorded : undefined, options.fallback ?? 'none');
    } finally {
      await file.close();
    }
  }

  /** Names of the `context.<name>` tensors ('' stands for the plain `context`). */
  get names(): string[] {
    return [...this.contexts.keys()];
  }

  encode(prompt: string): Float32Array {
    const named = this.contexts.get(prompt);
    if (named && prompt !== '') return named.slice();
    const plain = this.contexts.get('');
    if (plain && (this.defaultPrompt === prompt || this.fallback === 'default-context')) return plain.slice();
    const names = this.names.filter((n) => n !== '').map((n) => `'${n}'`);
    const has = names.length > 0 ? `its named contexts: ${names.join(', ')}` : 'no named contexts';
    const plainNote = plain
      ? `; its plain 'context' is ${this.defaultPrompt !== undefined ? `for the prompt '${this.defaultPrompt}' (__metadata__.prompt)` : 'for no recorded prompt'}, and other prompts get it only with text.fallback: default-context`
      : '';
    throw new SinkstreamError('ERR_PROMPT', `${this.path} holds no context for prompt '${prompt}' (${has}${plainNote})`);
  }
}
