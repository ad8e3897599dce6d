/**
 * The idle rule of a live stream: with no viewer and no recording it is worth nothing but keeps its
 * share of the device, so it stops after serve.idleStopSeconds, counted from when its last viewer
 * left (or from its creation if none ever joined). A viewer joining, or a recording, cancels the
 * count; the stream's owner reports every change with `update`.
 */
import type { Timers } from '../realtime/runtime-scheduler.js';

/** Why a stream will not stop for want of viewers, or when it will. */
export type IdleStopState = { pending: true; at: number } | { pending: false; reason: 'watched' | 'recording' | 'disabled' | 'stopped' };

export class IdleStop {
  private deadline: number | null = null;
  private timer: unknown = null;
  private kept: Extract<IdleStopState, { pending: false }>['reason'];
  private disposed = false;

  /**
   * @param graceMs how long a stream may go unwatched (0 = forever)
   * @param now the clock `at` is read on
   * @param onIdle called once when the grace runs out
   */
  constructor(
    private readonly graceMs: number,
    private readonly now: () => number,
    private readonly timers: Timers,
    private readonly onIdle: () => void,
  ) {
    this.kept = graceMs > 0 ? 'watched' : 'disabled';
  }

  /** The stream's viewers or recording changed (also call it once when the stream starts). */
  update(viewers: number, recording: boolean): void {
    if (this.disposed || this.graceMs <= 0) return;
    if (viewers > 0 || recording) {
      this.kept = viewers > 0 ? 'watched' : 'recording';
      this.cancel();
      return;
    }
    if (this.deadline !== null) return; // already counting since the last viewer left
    this.deadline = this.now() + this.graceMs;
    this.timer = this.timers.set(() => {
      this.timer = null;
      if (this.disposed) return;
      this.dispose();
      this.onIdle();
    }, this.graceMs);
  }

  state(): IdleStopState {
    if (this.disposed) return { pending: false, reason: this.graceMs > 0 ? 'stopped' : 'disabled' };
    return this.deadline === null ? { pending: false, reason: this.kept } : { pending: true, at: this.deadline };
  }

  /** The stream is stopping: no more counting. */
  dispose(): void {
    this.disposed = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    this.deadline = null;
  }
}
