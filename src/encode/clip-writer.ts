/**
 * A clip written to an MP4 file from a generator's blocks: how many frames it asks for, the file
 * opened with the configuration's encoder settings, and the frame loop. `sinkstream render` and the
 * server's render jobs (src/serve/render-jobs.ts) both write through here.
 */
import type { Config } from '../config/schema.js';
import { openMp4File, type Mp4FileWriter } from './mp4-file-writer.js';
import { encoderOptionsFor } from './encoder-settings.js';

/** `frames`, else `seconds` (default output.seconds) of video at generation.fps; at least 1. */
export function clipFrames(config: Config, length: { frames?: number; seconds?: number } = {}): number {
  return length.frames ?? Math.max(1, Math.round(config.generation.fps * (length.seconds ?? config.output.seconds)));
}

/** Opens `file` for frames of `width` x `height` at generation.fps with output.crf / preset / keyframeSeconds. */
export function openClipFile(file: string, config: Config, size: { width: number; height: number }): Promise<Mp4FileWriter> {
  return openMp4File(file, encoderOptionsFor(config, size));
}

export interface ClipBlocks<B extends { frames: readonly Uint8Array[] }> {
  /** The next block; null when there are no more. */
  next(): Promise<B | null>;
}

export interface ClipHooks<B> {
  /** Asked before each block and each frame: true ends the clip there. */
  stop?: () => boolean;
  /** After each frame handed to the encoder, with the frames written so far. */
  onFrame?: (written: number) => void;
  /** After each block's frames. */
  onBlock?: (block: B, written: number) => void;
}

/**
 * Hands the blocks' frames to `writer` until `frames` are written, the blocks end or `stop()` says
 * so. A write that fails once `stop()` says so ends the clip instead of failing it (Ctrl-C reaches
 * ffmpeg too, in the same process group: it finishes the file and exits). Returns the frames written.
 */
export async function writeClipFrames<B extends { frames: readonly Uint8Array[] }>(
  writer: Pick<Mp4FileWriter, 'writeFrame'>,
  blocks: ClipBlocks<B>,
  frames: number,
  hooks: ClipHooks<B> = {},
): Promise<number> {
  const stopped = hooks.stop ?? (() => false);
  let written = 0;
  while (written < frames && !stopped()) {
    const block = await blocks.next();
    if (!block) break;
    for (const frame of block.frames) {
      if (written >= frames || stopped()) break;
      try {
        await writer.writeFrame(frame);
      } catch (e) {
        if (stopped()) break;
        throw e;
      }
      written++;
      hooks.onFrame?.(written);
    }
    hooks.onBlock?.(block, written);
  }
  return written;
}
