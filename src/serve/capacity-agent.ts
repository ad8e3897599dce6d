/**
 * The HAProxy agent endpoint (serve.agentPort): a TCP port that answers every connection with one
 * line saying how much of this instance is free, in HAProxy's agent-check words, and closes:
 *
 *   `ready 75%`  admitting streams; the balancer's weight for new streams is the free share of serve.maxStreams
 *   `drain`      not admitting (full, starting, or draining at SIGTERM): no new streams are balanced here,
 *                while requests pinned to this instance's streams (by their id) still reach it
 *
 * Liveness is the balancer's HTTP check of /healthz; this only steers where new streams go.
 */
import net from 'node:net';
import type { Readiness } from './readiness.js';

/** The agent's line for a readiness answer. */
export function agentReply(r: Readiness): string {
  if (!r.ready) return 'drain\n';
  const free = Math.max(0, r.maxStreams - r.streams);
  // At least 1%: a ready instance must keep a non-zero weight.
  return `ready ${Math.max(1, Math.round((100 * free) / r.maxStreams))}%\n`;
}

export class CapacityAgent {
  private constructor(private readonly server: net.Server) {}

  static async listen(host: string, port: number, readiness: () => Readiness): Promise<CapacityAgent> {
    const server = net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.end(agentReply(readiness()));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return new CapacityAgent(server);
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
