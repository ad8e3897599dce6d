/**
 * Contexts kept per prompt in front of a slow text encoder: the `size` most recently used in memory,
 * optionally every one on disk (`dir`, one `<sha256>.f32` file per prompt and encoder identity,
 * written atomically), and concurrent requests for one prompt share a single encoding.
 * Every caller gets its own copy (contexts are transferred to engines).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SinkstreamError } from '../errors.js';
import type { PromptEncoder } from './prompt-encoder.js';

export interface ContextCacheOptions {
  /** Contexts kept in memory (0: none). */
  size: number;
  /** A folder for contexts on disk; undefined: memory only. */
  dir?: string;
  /** What makes two encoders' contexts differ (weights file and date, tokenizer, shape, ...), part of the disk key. */
  identity: string;
}

export class CachedPromptEncoder implements PromptEncoder {
  readonly kind: PromptEncoder['kind'];
  readonly textLen: number;
  readonly textDim: number;
  private readonly memory = new Map<string, Float32Array>();
  private readonly inFlight = new Map<string, Promise<Float32Array>>();
  /** Encodings done by the inner encoder (cache misses). */
  encodings = 0;

  constructor(
    private readonly inner: PromptEncoder,
    private readonly options: ContextCacheOptions,
  ) {
    this.kind = inner.kind;
    this.textLen = inner.textLen;
    this.textDim = inner.textDim;
    if (options.dir) {
      try {
        mkdirSync(options.dir, { recursive: true });
      } catch (e) {
        throw new SinkstreamError('ERR_CONFIG_INVALID', `text.cacheDir: cannot create ${options.dir} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
      }
    }
  }

  async encode(prompt: string): Promise<Float32Array> {
    const kept = this.memory.get(prompt);
    if (kept) {
      this.memory.delete(prompt); // most recently used last
      this.memory.set(prompt, kept);
      return kept.slice();
    }
    let pending = this.inFlight.get(prompt);
    if (!pending) {
      pending = this.load(prompt).finally(() => this.inFlight.delete(prompt));
      this.inFlight.set(prompt, pending);
    }
    return (await pending).slice();
  }

  private async load(prompt: string): Promise<Float32Array> {
    const file = this.fileFor(prompt);
    let context = file ? await this.readDisk(file) : null;
    if (!context) {
      this.encodings++;
      context = await this.inner.encode(prompt);
      if (file) await this.writeDisk(file, context);
    }
    this.remember(prompt, context);
    return context;
  }

  private remember(prompt: string, context: Float32Array): void {
    if (this.options.size === 0) return;
    this.memory.set(prompt, context);
    while (this.memory.size > this.options.size) this.memory.delete(this.memory.keys().next().value!);
  }

  private fileFor(prompt: string): string | null {
    if (!this.options.dir) return null;
    const key = createHash('sha256').update(`${this.options.identity}\n${this.textLen}x${this.textDim}\n${prompt}`).digest('hex');
    return path.join(this.options.dir, `${key}.f32`);
  }

  private async readDisk(file: string): Promise<Float32Array | null> {
    try {
      const bytes = await readFile(file);
      if (bytes.byteLength !== this.textLen * this.textDim * 4) return null;
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    } catch {
      return null;
    }
  }

  private async writeDisk(file: string, context: Float32Array): Promise<void> {
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, new Uint8Array(context.buffer, context.byteOffset, context.byteLength));
    await rename(tmp, file);
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}
