// Load-test viewers in their own process: N WebSocket viewers of one stream, the first `slow` of
// them reading slowly (their socket is paused and read one chunk, at most 64 KiB, per `slowEveryMs`).
// Prints one line `connected` once all are watching, then, after `seconds`, one JSON line of what
// each received, and exits. Loopback only.
// usage: node load-viewers.mjs <port> <stream> <n> <slow> <seconds> [slowEveryMs]
import WebSocket from 'ws';

const [port, stream, n, slow, seconds, slowEvery = '3000'] = process.argv.slice(2);
const N = Number(n);
const SLOW = Number(slow);
const viewers = [];

function viewer(i) {
  const isSlow = i < SLOW;
  const v = { slow: isSlow, fragments: 0, bytes: 0, inits: 0, closeCode: null, watching: false };
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?v=1`, { perMessageDeflate: false });
  v.ws = ws;
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      v.fragments++;
      v.bytes += data.length;
      return;
    }
    const m = JSON.parse(data.toString());
    if (m.type === 'hello') ws.send(JSON.stringify({ type: 'watch', stream }));
    if (m.type === 'init') v.inits++;
    if (m.type === 'watching') {
      v.watching = true;
      if (isSlow) {
        ws._socket.pause();
        // one socket read (at most 64 KiB) per interval
        v.timer = setInterval(() => {
          ws._socket.once('data', () => ws._socket.pause());
          ws._socket.resume();
        }, Number(slowEvery));
      }
    }
  });
  ws.on('close', (code) => {
    v.closeCode = code;
    clearInterval(v.timer);
  });
  ws.on('error', () => undefined);
  return v;
}

for (let i = 0; i < N; i++) viewers.push(viewer(i));
const started = Date.now();
const ready = setInterval(() => {
  if (viewers.every((v) => v.watching) || Date.now() - started > 10_000) {
    clearInterval(ready);
    process.stdout.write('connected\n');
    setTimeout(() => {
      for (const v of viewers) v.ws.terminate();
      const report = viewers.map(({ slow, fragments, bytes, inits, closeCode }) => ({ slow, fragments, bytes, inits, closeCode }));
      process.stdout.write(`${JSON.stringify(report)}\n`);
      process.exit(0);
    }, Number(seconds) * 1000);
  }
}, 20);
