/**
 * The project's one request/reply protocol between threads: the engine's, the decoder's, the text
 * encoder's and each hosted generator's worker, and the port a generator's thread reaches the shared
 * text encoder through.
 *
 * The serving side (`serveWorker` in a worker thread, `serveRpc` on any port) answers calls by
 * method name; the calling side (`RpcClient`) gets a promise per call. Requests carry ids; typed
 * arrays travel in transfer lists (`call(..., transfer)` one way, `transferring(value, list)` the
 * other); an error crosses as its stable code and message (a thrown SinkstreamError comes back as
 * one, anything else as ERR_ENGINE); a worker that fails to start, crashes or exits fails every
 * pending and later call with ERR_ENGINE naming the cause; a call after `close()` fails with
 * ERR_CLOSED. A method named `close` is the server's last: the client sends it on close(), and the
 * server closes its port once it has answered.
 */
import { Worker, type MessagePort, type TransferListItem } from 'node:worker_threads';
import { SinkstreamError, fromSchedulerError, isSinkstreamError, type ErrorCode } from '../errors.js';

/** An error as it crosses a thread boundary. */
export interface WireError {
  code?: ErrorCode;
  message: string;
  stack?: string;
}

type ToServer = { rpc: 'call'; id: number; method: string; args: unknown[] };
type ToClient =
  | { rpc: 'ready'; value: unknown }
  | { rpc: 'startFailed'; error: WireError }
  | { rpc: 'result'; id: number; value: unknown }
  | { rpc: 'error'; id: number; error: WireError }
  | { rpc: 'event'; name: string; value: unknown };

function toWireError(e: unknown): WireError {
  const error = fromSchedulerError(e);
  if (isSinkstreamError(error)) return { code: error.code, message: error.message, stack: error.stack };
  const err = error instanceof Error ? error : new Error(String(error));
  return { message: err.message, stack: err.stack };
}

function fromWireError(e: WireError): SinkstreamError {
  const error = new SinkstreamError(e.code ?? 'ERR_ENGINE', e.message);
  if (e.stack) error.stack = e.stack;
  return error;
}

type Args<F> = F extends (...args: infer A) => unknown ? A : never;
type Result<F> = F extends (...args: never[]) => infer R ? Awaited<R> : never;

/** A handler's value with the buffers that move to the other thread instead of being copied. */
export class Transferring<T> {
  constructor(
    readonly value: T,
    readonly transfer: readonly TransferListItem[],
  ) {}
}

export function transferring<T>(value: T, transfer: readonly TransferListItem[]): Transferring<T> {
  return new Transferring(value, transfer);
}

/** What a server answers each method of `Api` with. */
export type RpcHandlers<Api> = {
  [M in keyof Api]: (...args: Args<Api[M]>) => Result<Api[M]> | Transferring<Result<Api[M]>> | Promise<Result<Api[M]> | Transferring<Result<Api[M]>>>;
};

export interface RpcServerOptions {
  /** Calls run one at a time in arrival order (default); false runs each as it arrives. */
  serial?: boolean;
}

/** Sends events to the client, in order with the replies (each before the reply posted after it). */
export interface RpcEvents {
  emit(name: string, value: unknown, transfer?: readonly TransferListItem[]): void;
}

/**
 * Answers calls arriving on `port` with `handlers`, and reports `ready` (whose value the client's
 * `RpcClient.start` resolves with) once; call it after any start-up work. After the `close` method
 * has answered, the port is closed.
 */
export function serveRpc<Api>(port: MessagePort, handlers: RpcHandlers<Api>, ready?: unknown, options: RpcServerOptions = {}): void {
  const post = (message: ToClient, transfer: readonly TransferListItem[] = []): void => port.postMessage(message, transfer);
  const table = handlers as Record<string, (...args: unknown[]) => unknown>;
  const answer = async ({ id, method, args }: ToServer): Promise<void> => {
    try {
      const handler = Object.hasOwn(table, method) ? table[method] : undefined;
      if (!handler) throw new SinkstreamError('ERR_ENGINE', `internal: no method '${method}' on this worker`);
      const out = await handler(...args);
      if (out instanceof Transferring) post({ rpc: 'result', id, value: out.value }, out.transfer);
      else post({ rpc: 'result', id, value: out });
    } catch (e) {
      post({ rpc: 'error', id, error: toWireError(e) });
    }
    if (method === 'close') port.close();
  };
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (message: ToServer) => {
    if (message?.rpc !== 'call') return;
    if (options.serial === false) void answer(message);
    else queue = queue.then(() => answer(message));
  });
  post({ rpc: 'ready', value: ready });
}

/** The event sender of a port that `serveRpc` serves (or will serve). */
export function rpcEvents(port: MessagePort): RpcEvents {
  return {
    emit: (name, value, transfer = []) => port.postMessage({ rpc: 'event', name, value } satisfies ToClient, transfer),
  };
}

/**
 * Runs `start` in a worker thread and serves what it returns. A failed start is reported once, as a
 * message, and the worker then ends on its own: throwing as well would raise the Worker's 'error'
 * event, which can reach the calling thread first and would replace the error's stable code.
 */
export async function serveWorker<Api>(
  port: MessagePort | null,
  start: () => Promise<{ handlers: RpcHandlers<Api>; ready?: unknown }>,
  options?: RpcServerOptions,
): Promise<void> {
  if (!port) throw new Error('a worker module must run as a worker thread');
  let started: { handlers: RpcHandlers<Api>; ready?: unknown };
  try {
    started = await start();
  } catch (e) {
    port.postMessage({ rpc: 'startFailed', error: toWireError(e) } satisfies ToClient);
    port.close();
    return;
  }
  serveRpc(port, started.handlers, started.ready, options);
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
}

/** The calling side: a worker thread, or one end of a MessageChannel. `label` names it in errors ("the ort engine"). */
export class RpcClient<Api> {
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Array<(value: unknown) => void>>();
  private nextId = 1;
  private died: SinkstreamError | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly endpoint: Worker | MessagePort,
    readonly label: string,
  ) {
    endpoint.on('message', (message: ToClient) => this.onMessage(message));
    if (endpoint instanceof Worker) {
      endpoint.on('error', (e) => this.onDeath(e.message, e));
      endpoint.on('exit', (code) => this.onDeath(`exit code ${code}`));
    } else {
      endpoint.once('close', () => this.onDeath('its port closed'));
    }
  }

  /**
   * Waits for a worker's start (`serveWorker`): resolves with its client and the value it reported
   * ready with; rejects with the start's own error (its code kept), or ERR_ENGINE when the worker
   * failed or exited first. The worker is terminated on failure.
   */
  static async start<Api, Ready = undefined>(worker: Worker, label: string): Promise<{ client: RpcClient<Api>; ready: Ready }> {
    const ready = await new Promise<Ready>((resolve, reject) => {
      let settled = false;
      const done = (then: () => void): void => {
        if (settled) return;
        settled = true;
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        then();
      };
      const onMessage = (message: ToClient): void => {
        if (message?.rpc === 'ready') done(() => resolve(message.value as Ready));
        else if (message?.rpc === 'startFailed') done(() => reject(fromWireError(message.error)));
      };
      const onError = (e: Error): void => done(() => reject(new SinkstreamError('ERR_ENGINE', `${label} failed to start: ${e.message}`, { cause: e })));
      // A failed start arrives as a message just before the exit: give it a turn first.
      const onExit = (code: number): void =>
        void setImmediate(() => done(() => reject(new SinkstreamError('ERR_ENGINE', `${label} exited with code ${code} while starting`))));
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    }).catch(async (e: unknown) => {
      await worker.terminate();
      throw e;
    });
    return { client: new RpcClient<Api>(worker, label), ready };
  }

  /** Calls `method` on the other thread; `transfer` lists buffers of `args` that move instead of being copied. */
  call<M extends keyof Api & string>(method: M, args: Args<Api[M]>, transfer: readonly TransferListItem[] = []): Promise<Result<Api[M]>> {
    if (this.closing) return Promise.reject(new SinkstreamError('ERR_CLOSED', `${this.label} is closed`));
    return this.send(method, args, transfer) as Promise<Result<Api[M]>>;
  }

  /** Listens to the server's events (`rpcEvents(port).emit(name, ...)`). */
  on(name: string, listener: (value: unknown) => void): void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
  }

  /** Whether the other side has failed (a crash, an exit, a closed port). */
  get dead(): boolean {
    return this.died !== null;
  }

  /**
   * Calls the server's `close` method (when it is still alive and has one: its failure is ignored),
   * then terminates the worker or closes the port. Calls still pending fail with ERR_CLOSED. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.died) await this.send('close', []).catch(() => undefined);
      if (this.endpoint instanceof Worker) await this.endpoint.terminate();
      else this.endpoint.close();
      this.failAll(new SinkstreamError('ERR_CLOSED', `${this.label} was closed`));
    })();
    return this.closing;
  }

  private send(method: string, args: readonly unknown[], transfer: readonly TransferListItem[] = []): Promise<unknown> {
    if (this.died) return Promise.reject(this.died);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.endpoint.postMessage({ rpc: 'call', id, method, args: [...args] } satisfies ToServer, transfer);
    });
  }

  private onMessage(message: ToClient): void {
    if (message?.rpc === 'event') {
      for (const listener of this.listeners.get(message.name) ?? []) listener(message.value);
      return;
    }
    if (message?.rpc !== 'result' && message?.rpc !== 'error') return;
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    if (message.rpc === 'result') waiter.resolve(message.value);
    else waiter.reject(fromWireError(message.error));
  }

  private onDeath(cause: string, error?: Error): void {
    if (this.died) return;
    if (this.closing) return this.failAll(new SinkstreamError('ERR_CLOSED', `${this.label} was closed`));
    this.died = new SinkstreamError('ERR_ENGINE', `${this.label} died: ${cause}`, error ? { cause: error } : undefined);
    this.failAll(this.died);
  }

  private failAll(e: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(e);
    this.pending.clear();
  }
}
