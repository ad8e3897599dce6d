/**
 * The calls on one native handle (an engine or a decoder of the CUDA addon), run one after another: the
 * addon's work runs on libuv's thread pool, and a handle must not be used by two calls at once. A call made
 * while none is in flight starts at once, inside run(): the addon has its work before the caller's next line
 * runs (the generator draws the next step's noise right after asking for a forward; started on a later tick,
 * the forward would wait for the noise). After close() is asked for, calls reject with ERR_CLOSED; close
 * waits for the calls in flight, then frees the handle. Errors from the addon become SinkstreamErrors named
 * after what the handle is.
 */
import { SinkstreamError } from '../../errors.js';

export class NativeCallQueue<H> {
  private handle: H | null;
  private chain: Promise<unknown> = Promise.resolve();
  /** Calls asked for and not yet settled (the one running included). */
  private inFlight = 0;
  private closed = false;

  /** `what` names the handle in messages, e.g. 'native engine'. */
  constructor(
    handle: H,
    private readonly what: string,
  ) {
    this.handle = handle;
  }

  /** A SinkstreamError for `e` (kept as it is when it already is one; ERR_CLOSED kept, else ERR_ENGINE). */
  error(e: unknown): SinkstreamError {
    return nativeError(this.what, e);
  }

  /** The handle for a synchronous call; throws ERR_CLOSED once close() was asked for. */
  current(): H {
    if (this.closed || !this.handle) throw this.closedError();
    return this.handle;
  }

  /**
   * Runs `op` after every earlier call, at once when none is in flight; rejects with ERR_CLOSED once close()
   * was asked for. An exception `op` throws becomes the rejection.
   */
  run<T>(op: (handle: H) => Promise<T> | T): Promise<T> {
    if (this.closed || !this.handle) return Promise.reject(this.closedError());
    const handle = this.handle;
    const start = (): Promise<T> => new Promise<T>((resolve) => resolve(op(handle)));
    const idle = this.inFlight === 0;
    this.inFlight++;
    const next = idle ? start() : this.chain.then(start, start);
    const settled = (): void => {
      this.inFlight--;
    };
    this.chain = next.then(settled, settled);
    return next.catch((e: unknown) => {
      throw this.error(e);
    });
  }

  /** Idempotent: waits for calls in flight, then frees the handle with `destroy`. */
  async close(destroy: (handle: H) => void): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    if (this.handle) destroy(this.handle);
    this.handle = null;
  }

  private closedError(): SinkstreamError {
    return new SinkstreamError('ERR_CLOSED', `${this.what}: used after close()`);
  }
}

/** The addon's error `e` as a SinkstreamError naming `what` (ERR_CLOSED kept, anything else ERR_ENGINE). */
export function nativeError(what: string, e: unknown): SinkstreamError {
  if (e instanceof SinkstreamError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: string }).code === 'ERR_CLOSED' ? 'ERR_CLOSED' : 'ERR_ENGINE';
  return new SinkstreamError(code, `${what}: ${message}`, { cause: e });
}

/**
 * Runs `op` with the handles of every queue once each queue's earlier calls are done, holding all of them (no other
 * call on any of them runs meanwhile). The queues are taken one after another in the order given: callers that hold
 * several must give them in one global order, so that two of them never wait on each other.
 */
export function runOnAll<H, T>(queues: readonly NativeCallQueue<H>[], op: (handles: H[]) => Promise<T>): Promise<T> {
  const handles: H[] = [];
  const take = (i: number): Promise<T> =>
    i === queues.length
      ? op(handles)
      : queues[i].run((h) => {
          handles[i] = h;
          return take(i + 1);
        });
  return take(0);
}
