/**
 * One native decoder's part of the addon, in JS (TAEHV's taehv* or the Wan VAE's wanVae*): frame f of a block
 * is filled with (block * 16 + f), a stream's first block gives `firstBlockFrames(F)` frames and later ones 4F;
 * calls are logged, weights kept, overlapping decodes noticed.
 */
import * as assert from 'uvu/assert';
import type { NativeAddon } from '../../../src/engine/native/addon-types.js';

export interface StandInOptions {
  failCreate?: string;
  failFinalize?: string;
}

export function nativeDecoderStandIn(kind: 'taehv' | 'wanVae', firstBlockFrames: (frames: number) => number, options: StandInOptions = {}) {
  const log: string[] = [];
  const weights = new Map<string, Float32Array>();
  let created: { dims: { latentWidth: number; latentHeight: number }; device: number; precision: number } | null = null;
  let started = false;
  let block = 0;
  let destroyed = 0;
  let inFlight = 0;
  let overlapped = false;
  const create = kind === 'taehv' ? 'createTaehv' : 'createWanVae';
  const addon = {
    [create](dims: { latentWidth: number; latentHeight: number }, device: number, precision: number) {
      if (options.failCreate) throw new Error(options.failCreate);
      created = { dims, device, precision };
      return {};
    },
    [`${kind}Destroy`]() {
      destroyed++;
    },
    [`${kind}SetWeight`](_h: unknown, key: string, data: Float32Array) {
      assert.ok(data instanceof Float32Array);
      weights.set(key, data);
    },
    async [`${kind}Finalize`](_h: unknown, warmup: number) {
      log.push(`finalize ${warmup}`);
      if (options.failFinalize) throw new Error(options.failFinalize);
      return 0;
    },
    async [`${kind}Decode`](_h: unknown, latent: Float32Array, frames: number, out: Uint8Array) {
      if (inFlight++) overlapped = true;
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      const n = started ? 4 * frames : firstBlockFrames(frames);
      const bytes = out.length / (4 * frames);
      for (let f = 0; f < n; f++) out.fill(block * 16 + f, f * bytes, (f + 1) * bytes);
      log.push(`decode ${latent[0]} ${frames}`);
      started = true;
      block++;
      return n;
    },
    async [`${kind}Reset`]() {
      log.push('reset');
      started = false;
      return 0;
    },
    [`${kind}Info`]() {
      const d = created!.dims;
      return { width: d.latentWidth * 8, height: d.latentHeight * 8, plans: 0, planMs: 0, lastMs: 0, deviceBytes: 0, provider: 'stand-in' };
    },
  };
  return {
    addon: addon as unknown as NativeAddon,
    log,
    weights,
    created: () => created,
    destroyed: () => destroyed,
    overlapped: () => overlapped,
  };
}
