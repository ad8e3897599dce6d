/**
 * Time to first frame and encoder-restart gap, measured where a viewer sees them: a server on
 * 127.0.0.1 (any free port), one WebSocket client that creates a stream and watches it.
 *
 *   node --import tsx tools/bench/serve-ttff.ts [--streams 3] [--restarts 3] [--set key=value ...]
 *
 * For each stream, one after the other:
 * - TTFF at the viewer: the create message sent -> the first media fragment received;
 * - restart gap, `--restarts` times: ffmpeg SIGKILLed -> the first media fragment of the new
 *   encoder received (and: the last fragment before the kill -> that fragment);
 * - the stream's own figures (the playout ledger: TTFF, latency, misses, restarts) at its end.
 * Everything is bounded: each wait times out (BENCH_TIMEOUT_MS, default 60 s) and the run stops.
 */
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/load.js';
import { SinkstreamServer } from '../../src/serve/server.js';
import type { ServerMessage, StreamFigures } from '../../src/serve/protocol.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const streams = option('--streams', 3);
const restarts = option('--restarts', 3);
const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 60_000);
/** How long a stream runs after its last restart before its figures are read. */
const SETTLE_MS = 2000;
/** The server starts building a new spare generator this long after a stream took one. */
const SPARE_REFILL_MS = 3500;

type Event = { at: number; text?: ServerMessage; binary?: Buffer };

class Viewer {
  readonly events: Event[] = [];
  private cursor = 0;
  private wake: (() => void) | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.events.push(isBinary ? { at: performance.now(), binary: data } : { at: performance.now(), text: JSON.parse(data.toString()) });
      this.wake?.();
    });
  }
  static open(port: number): Promise<Viewer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?v=1`, { perMessageDeflate: false });
      ws.once('open', () => resolve(new Viewer(ws)));
      ws.once('error', reject);
    });
  }
  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }
  /** Skips ahead to the next event matching `match`. */
  async next(what: string, match: (e: Event) => boolean): Promise<Event> {
    const deadline = performance.now() + TIMEOUT_MS;
    for (;;) {
      while (this.cursor < this.events.length) {
        const e = this.events[this.cursor++];
        if (match(e)) return e;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
  /** The next media fragment: a binary message not right after an init announcement. */
  async nextFragment(): Promise<Event> {
    for (;;) {
      const e = await this.next('a binary message', (e) => e.binary !== undefined);
      const before = this.events[this.events.indexOf(e) - 1];
      if (before?.text?.type !== 'init') return e;
    }
  }
  close(): void {
    this.ws.terminate();
  }
}

const ms = (v: number) => `${v.toFixed(0)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const config = loadConfig({ set: ['serve.port=0', 'serve.host=127.0.0.1', ...set] });
const server = await SinkstreamServer.listen({ config, env: {} });
const hardStop = setTimeout(() => {
  console.error('bench: over its time bound; stopping');
  process.exit(1);
}, TIMEOUT_MS * (2 + streams * (2 + restarts))).unref();
const ttffs: number[] = [];
const gaps: number[] = [];
const fragmentGaps: number[] = [];
try {
  for (let s = 0; s < streams; s++) {
    // Calibration and the spare generator are built at server start (and the spare again after a
    // stream took it), not in a stream's TTFF.
    await new Promise((r) => setTimeout(r, s === 0 ? 0 : SPARE_REFILL_MS));
    await server.ready();
    const viewer = await Viewer.open(server.port);
    try {
      await viewer.next('hello', (e) => e.text?.type === 'hello');
      const sentAt = performance.now();
      viewer.send({ type: 'create', prompt: config.generation.prompt, watch: true });
      const created = await viewer.next('created', (e) => e.text?.type === 'created' || e.text?.type === 'error');
      if (created.text?.type === 'error') {
        console.log(`stream ${s + 1}: refused: ${created.text.message}`);
        continue;
      }
      const id = (created.text as Extract<ServerMessage, { type: 'created' }>).stream.id;
      const first = await viewer.nextFragment();
      const ttff = first.at - sentAt;
      ttffs.push(ttff);
      const stream = server.streams.get(id)!;
      const lines = [`stream ${s + 1}: TTFF at the viewer ${ms(ttff)}`];
      for (let r = 0; r < restarts; r++) {
        for (let k = 0; k < 8; k++) await viewer.nextFragment(); // running steadily
        const lastBefore = viewer.events.filter((e) => e.binary).at(-1)!.at;
        const pid = stream.encoderPid!;
        const killedAt = performance.now();
        process.kill(pid, 'SIGKILL');
        await viewer.next('init after the restart', (e) => e.text?.type === 'init' && e.text.reason === 'encoder-restart');
        const after = await viewer.nextFragment();
        gaps.push(after.at - killedAt);
        fragmentGaps.push(after.at - lastBefore);
        lines.push(`restart ${r + 1}: kill -> fragment ${ms(after.at - killedAt)}, last fragment -> next ${ms(after.at - lastBefore)}`);
      }
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const f: StreamFigures = stream.figures();
      lines.push(
        `ledger: TTFF ${f.ttffMs === null ? '-' : ms(f.ttffMs)}, latency p50 ${ms(f.latencyMs.p50)} p99 ${ms(f.latencyMs.p99)}, ` +
          `misses ${f.deadlineMisses} of ${f.frames} frames, encoder restarts ${f.encoderRestarts}`,
      );
      console.log(lines.join('\n  '));
      viewer.send({ type: 'stop', stream: id });
      await viewer.next('ended', (e) => e.text?.type === 'ended');
    } finally {
      viewer.close();
    }
  }
  if (ttffs.length === 0) throw new Error('no stream was admitted');
  console.log(
    `TTFF at the viewer: median ${ms(median(ttffs))}, max ${ms(Math.max(...ttffs))} over ${ttffs.length} streams` +
      (gaps.length ? `; restart gap (kill -> next fragment): median ${ms(median(gaps))}, max ${ms(Math.max(...gaps))}; ` +
        `last fragment -> next: median ${ms(median(fragmentGaps))}, max ${ms(Math.max(...fragmentGaps))} over ${gaps.length} restarts` : ''),
  );
} finally {
  clearTimeout(hardStop);
  await server.close();
}
