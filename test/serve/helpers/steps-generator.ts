/**
 * A fake live generator that runs blocks at a chosen step count in real time: a block at s steps
 * sleeps (s + 1) * forwardMs * slowdown and says so in its timings, and every step count asked for
 * is recorded. Frames are small solid colours, so the real ffmpeg encodes them in no time.
 */
import type { Config } from '../../../src/config/schema.js';
import type { FrameBlock } from '../../../src/loop/types.js';
import type { LiveGenerator } from '../../../src/serve/live-stream.js';

export class StepsGenerator implements LiveGenerator {
  readonly width = 32;
  readonly height = 32;
  readonly fps = 16;
  readonly framesPerBlock = 3;
  readonly steps: number[] = [];
  slowdown = 1;
  closed = false;
  constructor(private readonly forwardMs = 10) {}

  async next(options: { steps?: number } = {}): Promise<FrameBlock> {
    const steps = options.steps ?? 4;
    const ms = (steps + 1) * this.forwardMs * this.slowdown;
    await new Promise((r) => setTimeout(r, ms));
    const index = this.steps.length;
    this.steps.push(steps);
    return {
      index,
      firstFrame: index * this.framesPerBlock,
      width: this.width,
      height: this.height,
      frames: Array.from({ length: this.framesPerBlock }, (_, i) => new Uint8Array(this.width * this.height * 3).fill((index * 30 + i * 9) & 255)),
      steps,
      // The modelled time, not the sleep's: timers on a busy machine fire late.
      timings: { totalMs: ms, engineMs: ms, decodeMs: 0 },
      cache: [],
      queryPositions: [index * 3, index * 3 + 1, index * 3 + 2],
    };
  }
  async *[Symbol.asyncIterator](): AsyncIterator<FrameBlock> {
    while (!this.closed) yield await this.next();
  }
  async setPrompt(): Promise<void> {}
  retune(_cache: Config['cache']): void {}
  cacheView() {
    return [];
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
