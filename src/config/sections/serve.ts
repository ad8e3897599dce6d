/** `serve:` — the live-stream server (owned by the server code in src/serve/). */
import { z } from 'zod';

export const serveSection = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Token for stream creation and control; also read from SINKSTREAM_TOKEN. */
    token: z.string().min(8).optional(),
    /** Origins allowed to open WebSockets (besides same-origin). */
    origins: z.array(z.string()).default([]),
    maxStreams: z.number().int().positive().default(4),
    maxViewers: z.number().int().positive().default(100),
    /** Largest control message (WebSocket maxPayload, HTTP request body), bytes. */
    maxMessageBytes: z.number().int().min(256).max(1 << 20).default(4096),
    /** Per viewer: past this many unsent bytes, skip media until the next keyframe. */
    viewerHighWaterBytes: z.number().int().positive().default(1 << 20),
    /** Per viewer: past this many unsent bytes, disconnect the viewer. */
    viewerHardCapBytes: z.number().int().positive().default(8 << 20),
    /** Hold generation to the playout clock (frames at generation.fps) instead of running ahead. */
    pace: z.boolean().default(true),
    /** With pace: how far generation may run ahead of the playout clock, seconds. */
    maxLeadSeconds: z.number().nonnegative().default(0.5),
    /** How often figures are pushed to viewers, ms. */
    statsIntervalMs: z.number().int().min(50).default(500),
    /**
     * A stream with no viewer and no recording stops after this many seconds (counted from when its
     * last viewer left, or from its creation if none ever joined); 0 = never.
     */
    idleStopSeconds: z.number().nonnegative().default(30),
    /**
     * A viewer that is skipping media (backlog past viewerHighWaterBytes) and has read nothing for this
     * many seconds is disconnected with close code 4008.
     */
    stalledViewerSeconds: z.number().positive().default(30),
    /**
     * Generators (a worker with its engine built) kept ready for the next stream, so that its first
     * picture does not wait for the engine to be built; each holds one engine's memory. 0 = none.
     */
    spareGenerators: z.number().int().min(0).max(4).default(1),
    /** Encoder restarts allowed per stream before the stream fails. */
    encoderRestarts: z.number().int().nonnegative().default(5),
    /**
     * SIGTERM drains the server: new streams are refused and /readyz fails at once, running streams go
     * on for their viewers for up to this many seconds, then stop (recordings finalised) and the process exits.
     */
    drainSeconds: z.number().nonnegative().default(30),
    /** Log level (JSON lines on stderr; readable lines on a terminal). */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Folder for recordings (`record: true` on create); files are named after the stream. */
    recordDir: z.string().min(1).default('recordings'),
    /**
     * This instance's name: every stream, render job and recording id starts with it and a dash, so a
     * load balancer in front of several instances routes requests about one to the instance that has
     * it (deploy/haproxy.cfg). Default: the host name and port, e.g. `gpu-host-8080`.
     */
    instanceId: z
      .string()
      .regex(/^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$/, 'lowercase letters, digits and dashes, at most 24, starting and ending with a letter or digit')
      .optional(),
    /**
     * TCP port of the HAProxy agent (agent-check): each connection gets this instance's free capacity as a
     * weight (`ready 50%`), or `drain` when it admits no stream. Off when unset.
     */
    agentPort: z.number().int().min(0).max(65535).optional(),
    /** Render jobs (POST /v1/renders) run at once; later ones queue. */
    maxRenderJobs: z.number().int().positive().default(1),
    /** Render jobs waiting at most; past that a new one is refused (429). */
    maxQueuedRenderJobs: z.number().int().nonnegative().default(8),
    /** Longest render job, frames. */
    maxRenderFrames: z.number().int().positive().default(4800),
    /** An ended render job, and its file, are forgotten this long after it ended, seconds. */
    renderJobTtlSeconds: z.number().positive().default(3600),
    /** Folder for render jobs' files (`<job id>.mp4`). */
    renderDir: z.string().min(1).default('renders'),
  })
  .strict()
  .refine((s) => s.viewerHardCapBytes > s.viewerHighWaterBytes, {
    message: 'viewerHardCapBytes must be larger than viewerHighWaterBytes',
    path: ['viewerHardCapBytes'],
  });
