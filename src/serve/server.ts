/**
 * The live-generation server: Node's http for the viewer page, /healthz and /readyz, /metrics and
 * the JSON API; `ws` for control and media on /ws. Token, Host and Origin are checked before a
 * WebSocket handshake is completed; the protocol version and the connection limit right after it
 * (with a close code a browser can read). `drain()` (SIGTERM) stops admitting streams, lets the
 * running ones go on for serve.drainSeconds, then closes.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import os from 'node:os';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config/schema.js';
import { SinkstreamError } from '../errors.js';
import { TOKEN_ENV, hostAllowed, isLoopbackHost, originAllowed, tokenMatches, tokenOf, type AccessPolicy } from './auth.js';
import { sendError, sendJson, statusOf } from './http-api.js';
import { ApiRouter } from './api-router.js';
import { recordingRoutes, renderRoutes, streamRoutes } from './api-v1.js';
import { openApiDocument } from './openapi.js';
import { RenderJobs } from './render-jobs.js';
import { CapacityAgent } from './capacity-agent.js';
import { defaultInstanceId } from './instance-id.js';
import { ServerMetrics } from './metrics.js';
import { CloseCode, PROTOCOL_VERSION } from './protocol.js';
import { isStaticPath, serveStatic } from './static-files.js';
import { StreamControl } from './stream-control.js';
import { StreamManager } from './stream-manager.js';
import { WsSession } from './ws-session.js';
import type { CreateGenerator } from './live-stream.js';
import { SpareGenerators } from './generator-host.js';
import { SharedGenerators } from './shared-generators.js';
import { checkModel } from '../loop/generator.js';
import { acquireUmt5Encoder, type SharedPromptEncoder } from '../text/shared-text-encoder.js';
import type { StartEncoder } from './encoder-supervisor.js';
import { ServeScheduling, type SchedulingOptions } from './serve-scheduling.js';
import { silentLogger, type Logger } from './logger.js';
import { buildInfo } from './build-info.js';
import { readiness, type Readiness } from './readiness.js';
import { realTimers, type Timers } from '../realtime/runtime-scheduler.js';
import { placementGpus, replicaConfig } from '../realtime/placement.js';

export interface ServerOptions {
  config: Config;
  /** Default: the project's generator (src/loop/generator.ts) in a worker thread. */
  createGenerator?: CreateGenerator;
  startEncoder?: StartEncoder;
  /** Where requests and stream events are logged (default: nowhere). */
  logger?: Logger;
  /** The environment to read SINKSTREAM_TOKEN from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * The block scheduler (default: on, calibrated on the real engine when the server starts).
   * Tests inject a calibration, clock or timers here; `false` runs streams unscheduled.
   */
  scheduling?: SchedulingOptions | false;
  /**
   * An HTTP connection with no traffic for this long is closed (default 30 s): one that never sends a
   * request would otherwise hold its socket and memory for a minute or more. WebSockets are not affected.
   */
  idleConnectionMs?: number;
}

const IDLE_CONNECTION_MS = 30_000;


/** The token in force: serve.token, else SINKSTREAM_TOKEN; undefined when neither is set. */
export function resolveToken(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = config.serve.token ?? (env[TOKEN_ENV] || undefined);
  if (token !== undefined && token.length < 8) {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `${config.serve.token !== undefined ? 'serve.token' : TOKEN_ENV}: a token needs at least 8 characters`);
  }
  return token;
}

function refuse(socket: Duplex, status: number, text: string, message: string): void {
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export class SinkstreamServer {
  readonly metrics: ServerMetrics;
  readonly streams: StreamManager;
  readonly control: StreamControl;
  readonly scheduling: ServeScheduling | null;
  /** Render jobs (POST /v1/renders). */
  readonly renders: RenderJobs;
  readonly token: string | undefined;
  /** The /v1 and /api routes, and the OpenAPI document made from the /v1 ones. */
  private readonly api: ApiRouter;
  private readonly openApi: Record<string, unknown>;
  /** The HAProxy agent port (serve.agentPort), once listening. */
  private agent: CapacityAgent | null = null;
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();
  private readonly policy: AccessPolicy;
  readonly logger: Logger;
  private closing: Promise<void> | null = null;
  private draining: Promise<void> | null = null;
  private calibrating: Promise<unknown> = Promise.resolve();
  /** Calibration and spare generators done (see ready()). */
  private warm = false;
  /** The project's generators, on threads of their own, a spare kept built (absent when a test injects createGenerator). */
  private readonly spares: SpareGenerators | null;
  /** engine.maxBatch >= 2: live streams' generators share a thread per engine setup, their forwards batched (null otherwise). */
  private readonly shared: SharedGenerators | null;
  private resolveClosed!: () => void;
  /** umt5: the server's own reference to the process's encoder, so that it stays loaded between streams (released by close()). */
  private textEncoder: SharedPromptEncoder | null = null;
  /** Resolves once close() has finished. */
  readonly closed: Promise<void> = new Promise((r) => (this.resolveClosed = r));

  private constructor(
    private readonly config: Config,
    options: ServerOptions,
  ) {
    this.logger = options.logger ?? silentLogger();
    this.token = resolveToken(config, options.env);
    this.policy = { token: this.token, origins: config.serve.origins };
    this.metrics = new ServerMetrics(() => this.streams.figures(), buildInfo(config));
    this.scheduling = options.scheduling === false ? null : new ServeScheduling(config, this.metrics, this.logger, options.scheduling ?? {});
    // Replicas: spares hold a whole-model engine on the first GPU (streams placed on another build their own).
    const spareConfig = config.engine.placement === 'replicas' ? replicaConfig(config, placementGpus(config)[0]) : config;
    this.shared = options.createGenerator || config.engine.maxBatch < 2 ? null : new SharedGenerators(spareConfig, (line) => this.logger.warn({ event: 'shared-generator-failed' }, line));
    // with shared generators the spares would only serve render jobs: none kept built (each holds an engine)
    const spareCount = this.shared ? 0 : config.serve.spareGenerators;
    this.spares = options.createGenerator ? null : new SpareGenerators(spareConfig, spareCount, undefined, (line) => this.logger.warn({ event: 'spare-generator-failed' }, line));
    this.streams = new StreamManager({
      config,
      createGenerator: options.createGenerator ?? (this.shared ? (c) => this.shared!.create(c) : (c) => this.spares!.create(c)),
      metrics: this.metrics,
      startEncoder: options.startEncoder,
      logger: this.logger,
      ...(this.scheduling ? { scheduling: this.scheduling } : {}),
      idPrefix: () => `${this.instanceId}-`,
    });
    this.control = new StreamControl(this.streams);
    const s = config.serve;
    this.renders = new RenderJobs({
      config,
      createGenerator: options.createGenerator ?? ((c) => this.spares!.create(c)),
      dir: s.renderDir,
      maxRunning: s.maxRenderJobs,
      maxQueued: s.maxQueuedRenderJobs,
      maxFrames: s.maxRenderFrames,
      ttlMs: s.renderJobTtlSeconds * 1000,
      idPrefix: () => `${this.instanceId}-`,
      refusing: () => (this.draining || this.closing ? 'the server is draining (shutting down); send the job to another instance' : null),
      logger: this.logger,
    });
    const v1 = [...streamRoutes('/v1', this.control), ...renderRoutes(this.renders), ...recordingRoutes(s.recordDir, this.control)];
    this.api = new ApiRouter([...v1, ...streamRoutes('/api', this.control)], {
      maxBodyBytes: s.maxMessageBytes,
      refused: (code) => this.metrics.controlErrors.inc({ code }),
      statusOf,
    });
    this.openApi = openApiDocument(v1, { version: buildInfo(config).version, tokenRequired: this.token !== undefined });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.serve.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Invalid UTF-8 then fails JSON validation and gets an error reply instead of a dropped connection.
      skipUTF8Validation: true,
    });
    this.http = http.createServer((req, res) => void this.onRequest(req, res));
    this.http.setTimeout(options.idleConnectionMs ?? IDLE_CONNECTION_MS); // ws clears it on upgrade
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.http.on('clientError', (_e, socket) => socket.destroy());
  }

  /**
   * Listens on serve.host:serve.port. Refuses (ERR_CONFIG_INVALID) to listen beyond loopback
   * without a token.
   */
  static async listen(options: ServerOptions): Promise<SinkstreamServer> {
    const { config } = options;
    const server = new SinkstreamServer(config, options);
    if (!server.token && !isLoopbackHost(config.serve.host)) {
      throw new SinkstreamError(
        'ERR_CONFIG_INVALID',
        `serve.host ${config.serve.host} is reachable from other machines; set a token first ` +
          `(serve.token in the config, --token, or the ${TOKEN_ENV} environment variable), or listen on 127.0.0.1`,
      );
    }
    // umt5 (23 GB at the real shape) is loaded once for the server's lifetime: without this reference
    // it would close when its last stream ends and load again for the next one.
    if (!options.createGenerator && config.text.encoder === 'umt5') server.textEncoder = await acquireUmt5Encoder(config);
    try {
      await server.start(options);
    } catch (e) {
      await server.textEncoder?.close();
      throw e;
    }
    return server;
  }

  /** Checks the model, listens, then starts calibration and the spare generators. */
  private async start(options: ServerOptions): Promise<void> {
    const { config } = options;
    // The project's model (weights, text vocabulary, decoder) is checked before anything listens: a
    // broken one stops the server with render's message instead of failing every create as if the
    // client were at fault. An injected generator brings its own model.
    if (!options.createGenerator) await checkModel(config);
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', (e: NodeJS.ErrnoException) =>
        reject(new SinkstreamError('ERR_ARGUMENT', `cannot listen on ${config.serve.host}:${config.serve.port}: ${e.code ?? e.message}`)),
      );
      this.http.listen(config.serve.port, config.serve.host, () => resolve());
    });
    if (config.serve.agentPort !== undefined) {
      try {
        this.agent = await CapacityAgent.listen(config.serve.host, config.serve.agentPort, () => this.readiness());
      } catch (e) {
        this.http.close();
        throw new SinkstreamError('ERR_ARGUMENT', `cannot listen on ${config.serve.host}:${config.serve.agentPort} (serve.agentPort): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    // Calibrate now, so that the first stream does not wait for it (its errors reach that stream's create).
    this.calibrating = this.scheduling?.prepare().catch(() => undefined) ?? Promise.resolve();
    // The spare generator is built after the calibration, which measures the device alone.
    void this.calibrating.then(() => this.closing || (this.spares?.fill(), this.shared?.fill()));
    void this.ready().then(() => {
      this.warm = true;
      this.logger.info({ event: 'ready' }, 'ready to admit streams');
    });
    this.logger.info(
      { event: 'listening', url: this.url, instance: this.instanceId, agentPort: this.agentPort, maxStreams: config.serve.maxStreams },
      `listening on ${this.url} as ${this.instanceId}`,
    );
  }

  /** serve.instanceId, else the host name and port: every id this instance hands out starts with it. */
  get instanceId(): string {
    return this.config.serve.instanceId ?? defaultInstanceId(os.hostname(), this.port);
  }

  /** How live streams' generators run: a thread each (engine.maxBatch 1), or sharing one per engine setup, batched. */
  get liveGeneratorThreads(): 'per stream' | 'shared' {
    return this.shared ? 'shared' : 'per stream';
  }

  /** The HAProxy agent's port (serve.agentPort), or null when off. */
  get agentPort(): number | null {
    return this.agent?.port ?? null;
  }

  get port(): number {
    const a = this.http.address();
    return typeof a === 'object' && a ? a.port : this.config.serve.port;
  }

  /** The page's address (without the token). */
  get url(): string {
    const host = this.config.serve.host;
    const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return `http://${shown}:${this.port}/`;
  }

  /** Resolves once calibration is done and the spare generators being built are ready (benchmarks wait for it). */
  async ready(): Promise<void> {
    await this.calibrating;
    await this.spares?.ready();
    await this.shared?.ready();
  }

  /** Whether a stream would be admitted now, and if not why (GET /readyz). */
  readiness(): Readiness {
    return readiness({
      draining: this.draining !== null || this.closing !== null,
      warm: this.warm,
      streams: this.streams.count,
      maxStreams: this.config.serve.maxStreams,
    });
  }

  /** Connections open now (viewers and controllers). */
  get connections(): number {
    return this.sockets.size;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.logRequest(req, res, url.pathname);
    // Probes carry no token and reveal nothing about streams: a load balancer or kubelet reaches them by any Host.
    if (url.pathname === '/healthz' || url.pathname === '/readyz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return sendError(res, 'bad-message', `${req.method} is not allowed on ${url.pathname}; use GET`, 405);
      }
      const body = url.pathname === '/healthz' ? { status: 'alive' } : this.readiness();
      const status = 'ready' in body && !body.ready ? 503 : 200;
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    if (!hostAllowed(req, this.policy)) return sendError(res, 'unauthorized', 'Host is not a loopback name (DNS rebinding guard); use 127.0.0.1 or localhost', 403);
    if (url.pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const text = await this.metrics.text();
      res.writeHead(200, { 'content-type': this.metrics.contentType });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    if (url.pathname === '/openapi.json' && (req.method === 'GET' || req.method === 'HEAD')) return sendJson(res, 200, this.openApi);
    if (url.pathname === '/api' || url.pathname.startsWith('/api/') || url.pathname === '/v1' || url.pathname.startsWith('/v1/')) {
      if (!tokenMatches(this.token, tokenOf(req, url, false))) {
        this.metrics.controlErrors.inc({ code: 'unauthorized' });
        res.setHeader('www-authenticate', 'Bearer realm="sinkstream"');
        return sendError(res, 'unauthorized', `missing or wrong token: send 'Authorization: Bearer <token>'`);
      }
      return this.api.handle(req, res, url);
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && (await serveStatic(url.pathname, res))) return;
    if (url.pathname === '/metrics' || url.pathname === '/openapi.json' || isStaticPath(url.pathname)) {
      res.setHeader('allow', 'GET, HEAD');
      return sendError(res, 'bad-message', `${req.method} is not allowed on ${url.pathname}; use GET`, 405);
    }
    sendError(res, 'not-found', `not found: ${url.pathname}`);
  }

  /** One log line per request once it is answered: method, path (never the query: it may hold the token), status, ms. */
  private logRequest(req: IncomingMessage, res: ServerResponse, path: string): void {
    const started = performance.now();
    res.once('close', () => {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      const entry = { event: 'http-request', method: req.method, path, status: res.statusCode, ms };
      // Probes and scrapes come every few seconds: debug, so that info shows what people did.
      if (path === '/healthz' || path === '/readyz' || path === '/metrics') this.logger.debug(entry, `${req.method} ${path} ${res.statusCode}`);
      else this.logger.info(entry, `${req.method} ${path} ${res.statusCode}`);
    });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    const refused = (status: number, text: string, reason: string, message: string) => {
      this.metrics.refusedConnections.inc({ reason });
      this.logger.info({ event: 'connection-refused', path: url.pathname, status, reason }, `WebSocket ${url.pathname} refused (${reason})`);
      refuse(socket, status, text, message);
    };
    if (this.closing) return refused(503, 'Service Unavailable', 'closing', 'the server is shutting down');
    if (url.pathname !== '/ws') return refused(404, 'Not Found', 'path', `no WebSocket endpoint at ${url.pathname}; use /ws`);
    if (!hostAllowed(req, this.policy)) return refused(403, 'Forbidden', 'host', 'Host is not a loopback name');
    if (!originAllowed(req, this.policy)) return refused(403, 'Forbidden', 'origin', `origin ${req.headers.origin} is not allowed (serve.origins)`);
    if (!tokenMatches(this.token, tokenOf(req, url, true))) return refused(401, 'Unauthorized', 'token', 'missing or wrong token: add ?token=<token>');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, url));
  }

  private onConnection(ws: WebSocket, url: URL): void {
    const version = url.searchParams.get('v');
    if (version !== String(PROTOCOL_VERSION)) {
      this.metrics.refusedConnections.inc({ reason: 'protocol-version' });
      this.logger.info({ event: 'connection-refused', path: url.pathname, status: 101, reason: 'protocol-version' }, 'WebSocket refused (protocol-version)');
      ws.close(CloseCode.PROTOCOL_VERSION, `protocol version ${version ?? '(none)'} not supported; this server speaks ${PROTOCOL_VERSION} (?v=${PROTOCOL_VERSION})`.slice(0, 123));
      return;
    }
    const { maxViewers, maxStreams, maxMessageBytes } = this.config.serve;
    if (this.sockets.size >= maxViewers) {
      this.metrics.refusedConnections.inc({ reason: 'server-full' });
      this.logger.info({ event: 'connection-refused', path: url.pathname, status: 101, reason: 'server-full' }, 'WebSocket refused (server-full)');
      ws.close(CloseCode.SERVER_FULL, `server full: ${maxViewers} connections (serve.maxViewers)`);
      return;
    }
    this.sockets.add(ws);
    this.logger.debug({ event: 'connection-opened', path: url.pathname, connections: this.sockets.size }, 'WebSocket opened');
    ws.on('close', () => this.sockets.delete(ws));
    const session = new WsSession(ws, this.control, this.metrics, this.config.serve.viewerHardCapBytes);
    session.send({ type: 'hello', version: PROTOCOL_VERSION, limits: { maxMessageBytes, maxStreams, maxViewers }, streams: this.streams.list() });
  }

  /**
   * Drains the server (SIGTERM): from now on creations are refused (`draining`, HTTP 503) and
   * /readyz answers 503 `draining`; running streams go on for their viewers (who may still join)
   * until they end or `graceMs` (serve.drainSeconds) has passed, then close() stops them with their
   * recordings finalised. Resolves when the server is closed. Idempotent; close() cuts the grace short.
   * `timers` times the grace (tests drive it by hand).
   */
  drain(options: { graceMs?: number; timers?: Timers } = {}): Promise<void> {
    const graceMs = options.graceMs ?? this.config.serve.drainSeconds * 1000;
    const timers = options.timers ?? realTimers;
    this.draining ??= (async () => {
      this.streams.refuseNew('the server is draining (shutting down); create the stream on another instance');
      const running = this.streams.count;
      this.logger.info({ event: 'drain-started', streams: running, graceSeconds: graceMs / 1000 }, `draining: ${running} stream(s) get up to ${graceMs / 1000} s`);
      let timer: unknown;
      const grace = new Promise<'grace-over'>((r) => (timer = timers.set(() => r('grace-over'), graceMs)));
      const how = await Promise.race([this.streams.whenEmpty().then(() => 'streams-ended' as const), grace, this.closed.then(() => 'closed' as const)]);
      timers.clear(timer);
      this.logger.info({ event: 'drain-finished', how, streams: this.streams.count }, `drain finished (${how})`);
      await this.close(how === 'grace-over' ? 'server drained: the grace period is over' : 'server drained');
    })();
    return this.draining;
  }

  /**
   * Stops every stream (viewers get their last fragments, recordings are finalized), closes every
   * connection with GOING_AWAY and stops listening. Idempotent.
   */
  close(reason = 'server shutting down'): Promise<void> {
    this.closing ??= (async () => {
      this.logger.info({ event: 'closing', reason, streams: this.streams.count }, `closing: ${reason}`);
      this.http.close();
      await Promise.all([this.streams.stopAll(reason), this.renders.close()]);
      await this.agent?.close();
      this.scheduling?.close();
      await this.calibrating;
      await this.spares?.close();
      await this.shared?.close();
      await this.textEncoder?.close();
      for (const ws of this.sockets) ws.close(CloseCode.GOING_AWAY, reason);
      await new Promise((r) => setTimeout(r, 100));
      for (const ws of this.sockets) ws.terminate();
      this.http.closeAllConnections();
      this.resolveClosed();
    })();
    return this.closing;
  }
}
