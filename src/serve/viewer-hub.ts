/**
 * The viewers of one stream and the media they are sent. Broadcasting never waits: every send is
 * queued on the viewer's socket, and each viewer's backlog (`bufferedAmount`) decides what it gets:
 * - below the high-water mark: every fragment;
 * - above it: fragments are skipped until the next keyframe fragment (the picture jumps forward);
 * - above the hard cap: the viewer is disconnected (close code TOO_SLOW);
 * - skipping for want of reading: a viewer whose backlog has not shrunk (it read nothing) for
 *   `stalledMs` while it skips is disconnected too (TOO_SLOW), or it would hold its connection and
 *   its kernel buffers for ever just under the hard cap.
 * A viewer that joins late gets the init segment and the fragments since the last keyframe (the
 * current group of pictures), so its first fragment starts with a keyframe.
 */
import { CloseCode, type ServerMessage } from './protocol.js';
import type { InitSegment, MediaFragment } from './fmp4-splitter.js';

/** What the hub needs of a WebSocket (ws's WebSocket fits). */
export interface ViewerSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Buffer | string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

const OPEN = 1;
/** A group of pictures larger than this is not kept for late joiners; they wait for a keyframe. */
const MAX_GOP_BYTES = 4 << 20;
/** A viewer closed for being too slow gets this long to finish the close handshake. */
const CLOSE_GRACE_MS = 2000;

type ViewerState = 'wait-init' | 'wait-keyframe' | 'live';

interface Viewer {
  state: ViewerState;
  sent: number;
  skipped: number;
  /** While skipping above the high-water mark: since when its backlog has not shrunk, and that backlog. */
  stalledSince: number | null;
  stalledBacklog: number;
}

export interface HubLimits {
  highWaterBytes: number;
  hardCapBytes: number;
  /** A viewer skipping above the high-water mark that reads nothing for this long is disconnected, ms. */
  stalledMs: number;
}

export interface HubEvents {
  skipped?(n: number): void;
  dropped?(socket: ViewerSocket): void;
  /** The number of viewers changed (joined, left, dropped). */
  viewers?(count: number): void;
}

export interface InitAnnouncement {
  width: number;
  height: number;
}

export class ViewerHub {
  private readonly viewers = new Map<ViewerSocket, Viewer>();
  private init: InitSegment | null = null;
  private gop: MediaFragment[] = [];
  private gopBytes = 0;
  skippedFragments = 0;
  droppedViewers = 0;

  constructor(
    private readonly streamId: string,
    private readonly limits: HubLimits,
    private readonly shape: InitAnnouncement,
    private readonly events: HubEvents = {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.viewers.size;
  }

  has(socket: ViewerSocket): boolean {
    return this.viewers.has(socket);
  }

  add(socket: ViewerSocket): void {
    if (this.viewers.has(socket)) return;
    const viewer: Viewer = { state: 'wait-init', sent: 0, skipped: 0, stalledSince: null, stalledBacklog: 0 };
    this.viewers.set(socket, viewer);
    this.events.viewers?.(this.viewers.size);
    if (!this.init) return;
    this.sendInit(socket, viewer, 'join');
    for (const f of this.gop) this.deliver(socket, viewer, f);
  }

  remove(socket: ViewerSocket): void {
    if (this.viewers.delete(socket)) this.events.viewers?.(this.viewers.size);
  }

  /** A new init segment (first, or after an encoder restart): every viewer restarts at the next keyframe. */
  setInit(init: InitSegment, reason: 'start' | 'encoder-restart'): void {
    this.init = init;
    this.gop = [];
    this.gopBytes = 0;
    for (const [socket, viewer] of this.viewers) this.sendInit(socket, viewer, reason);
  }

  broadcast(fragment: MediaFragment): void {
    if (fragment.keyframe) {
      this.gop = [fragment];
      this.gopBytes = fragment.data.length;
    } else if (this.gop.length) {
      this.gop.push(fragment);
      this.gopBytes += fragment.data.length;
      if (this.gopBytes > MAX_GOP_BYTES) {
        this.gop = [];
        this.gopBytes = 0;
      }
    }
    for (const [socket, viewer] of this.viewers) this.deliver(socket, viewer, fragment);
  }

  /** A JSON message to every viewer that is not behind (figures are replaced by the next ones anyway). */
  sendJson(message: ServerMessage): void {
    const text = JSON.stringify(message);
    for (const [socket] of this.viewers) {
      if (socket.readyState === OPEN && socket.bufferedAmount <= this.limits.highWaterBytes) socket.send(text);
    }
  }

  /** Sends a last message to every viewer and forgets them (they stay connected). */
  endAll(message: ServerMessage): void {
    const text = JSON.stringify(message);
    for (const [socket] of this.viewers) if (socket.readyState === OPEN) socket.send(text);
    this.viewers.clear();
    this.events.viewers?.(0);
  }

  private sendInit(socket: ViewerSocket, viewer: Viewer, reason: 'start' | 'join' | 'encoder-restart'): void {
    if (socket.readyState !== OPEN || !this.init) return;
    const announce: ServerMessage = {
      type: 'init',
      stream: this.streamId,
      codec: this.init.codec,
      width: this.shape.width,
      height: this.shape.height,
      reason,
    };
    socket.send(JSON.stringify(announce));
    socket.send(this.init.data);
    viewer.state = 'wait-keyframe';
  }

  private deliver(socket: ViewerSocket, viewer: Viewer, fragment: MediaFragment): void {
    if (socket.readyState !== OPEN) return;
    const backlog = socket.bufferedAmount;
    if (backlog > this.limits.hardCapBytes) {
      this.drop(socket, `too slow: more than ${this.limits.hardCapBytes} bytes unsent`);
      return;
    }
    if (viewer.state === 'wait-init') return;
    if (viewer.state === 'live' && backlog > this.limits.highWaterBytes) viewer.state = 'wait-keyframe';
    if (viewer.state === 'wait-keyframe' && (!fragment.keyframe || backlog > this.limits.highWaterBytes)) {
      if (backlog > this.limits.highWaterBytes && this.stalled(viewer, backlog)) {
        this.drop(socket, `stalled: read nothing for ${this.limits.stalledMs / 1000} s while skipping`);
        return;
      }
      this.skip(viewer);
      return;
    }
    viewer.stalledSince = null;
    viewer.state = 'live';
    viewer.sent++;
    socket.send(fragment.data);
  }

  /** Whether a viewer skipping above the high-water mark has read nothing (its backlog never shrank) for stalledMs. */
  private stalled(viewer: Viewer, backlog: number): boolean {
    const now = this.now();
    if (viewer.stalledSince === null || backlog < viewer.stalledBacklog) {
      viewer.stalledSince = now;
      viewer.stalledBacklog = backlog;
      return false;
    }
    return now - viewer.stalledSince >= this.limits.stalledMs;
  }

  private skip(viewer: Viewer): void {
    viewer.skipped++;
    this.skippedFragments++;
    this.events.skipped?.(1);
  }

  private drop(socket: ViewerSocket, reason: string): void {
    this.viewers.delete(socket);
    this.droppedViewers++;
    this.events.dropped?.(socket);
    this.events.viewers?.(this.viewers.size);
    socket.close(CloseCode.TOO_SLOW, reason);
    setTimeout(() => {
      if (socket.readyState !== 3) socket.terminate();
    }, CLOSE_GRACE_MS).unref();
  }
}
