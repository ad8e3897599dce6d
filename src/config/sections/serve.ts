/** `serve:` — the live-stream server (owned by the server code in src/serve/). */
import { z } from 'zod';

export const serveSection = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Token for stream creation and control; also read from SINKSTREAM_TOKEN. */
    token: z.string().optional(),
    /** Origins allowed to open WebSockets (besides same-origin). */
    origins: z.array(z.string()).default([]),
    maxStreams: z.number().int().positive().default(4),
    maxViewers: z.number().int().positive().default(100),
  })
  .strict();
