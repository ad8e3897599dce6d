// Benchmark viewers (tools/bench/serve-load.ts) in their own process: N WebSocket connections to one server, the first `slow`
// of them reading slowly (their socket is paused and reads one chunk, at most 64 KiB, every
// `slowEveryMs`). Commands on stdin, one a line: `watch <stream>` / `unwatch` (all viewers watch
// or stop watching), `report` (prints one JSON line of what each received). Prints `connected`
// once every viewer has its hello. Loopback only; exits when stdin closes.
// usage: node load-viewers.mjs <port> <n> <slow> [slowEveryMs]
import WebSocket from 'ws';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// Only as a program (a test runner may import every file under test/).
if (process.argv[1] === fileURLToPath(import.meta.url)) main();

function main() {
  const [port, n, slow, slowEvery = '3000'] = process.argv.slice(2);
  const viewers = [];
  for (let i = 0; i < Number(n); i++) {
    const isSlow = i < Number(slow);
    const v = { slow: isSlow, fragments: 0, bytes: 0, inits: 0, closeCode: null, hello: false };
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?v=1`, { perMessageDeflate: false });
    v.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        v.fragments++;
        v.bytes += data.length;
        return;
      }
      const m = JSON.parse(data.toString());
      if (m.type === 'hello') {
        v.hello = true;
        if (isSlow) {
          ws._socket.pause();
          v.timer = setInterval(() => {
            ws._socket.once('data', () => ws._socket.pause());
            ws._socket.resume();
          }, Number(slowEvery));
        }
      }
      if (m.type === 'init') v.inits++;
    });
    ws.on('close', (code) => {
      v.closeCode = code;
      clearInterval(v.timer);
    });
    ws.on('error', () => undefined);
    viewers.push(v);
  }
  const started = Date.now();
  const ready = setInterval(() => {
    if (viewers.every((v) => v.hello) || Date.now() - started > 15_000) {
      clearInterval(ready);
      process.stdout.write('connected\n');
    }
  }, 20);
  const send = (m) => viewers.forEach((v) => v.ws.readyState === WebSocket.OPEN && v.ws.send(JSON.stringify(m)));
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, stream] = line.split(' ');
    if (command === 'watch') send({ type: 'watch', stream });
    if (line === 'unwatch') send({ type: 'unwatch' });
    if (line === 'report') {
      const report = viewers.map(({ slow, fragments, bytes, inits, closeCode }) => ({ slow, fragments, bytes, inits, closeCode }));
      process.stdout.write(`${JSON.stringify(report)}\n`);
    }
  });
  process.stdin.on('end', () => {
    for (const v of viewers) v.ws.terminate();
    process.exit(0);
  });
}
