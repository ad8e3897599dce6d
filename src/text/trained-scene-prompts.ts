/**
 * A model trained on the demo scenes (`model.scene` set, read through the built-in vocabulary) can
 * only draw what its training captions named: this encoder refuses, with ERR_PROMPT naming what the
 * model can draw, every prompt that is not a training caption (src/scene/scene-spec.ts parsePrompt)
 * before the wrapped encoder sees it.
 * Its vocabulary alone would let through prompts the model renders as an empty background
 * ("a purple circle": purple is a background word only) or as another background ("on a blue
 * background": only "dark blue" was trained).
 */
import { parsePrompt, type SceneSpec } from '../scene/scene-spec.js';
import type { PromptEncoder } from './prompt-encoder.js';

/** An encoder that can say which words it does not know before any grammar is checked (the built-in one). */
type Inner = PromptEncoder & { tokenize?(prompt: string): unknown };

export class TrainedScenePromptEncoder implements PromptEncoder {
  readonly kind: PromptEncoder['kind'];
  readonly textLen: number;
  readonly textDim: number;

  constructor(
    private readonly inner: Inner,
    private readonly spec: SceneSpec,
  ) {
    this.kind = inner.kind;
    this.textLen = inner.textLen;
    this.textDim = inner.textDim;
  }

  encode(prompt: string): Float32Array | Promise<Float32Array> {
    this.inner.tokenize?.(prompt); // a word outside the vocabulary is named with the vocabulary first
    parsePrompt(prompt, this.spec);
    return this.inner.encode(prompt);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
