// The sinkstream viewer: one WebSocket for control and media; fMP4 played through Media Source
// Extensions in 'sequence' mode (skipped fragments and encoder restarts leave no gaps), kept near
// the live edge. Plain browser JavaScript, served as is.
const PROTOCOL_VERSION = 1;
const LIVE_EDGE_MAX_S = 1.5; // further behind than this: jump to the edge
const LIVE_EDGE_TARGET_S = 0.25;
const KEEP_BEHIND_S = 20; // buffered media older than this is removed
const MAX_QUEUE = 200;

const $ = (id) => document.getElementById(id);
const video = $('video');

const state = {
  ws: null,
  // A viewer URL (/?stream=<id>, as POST /v1/streams returns it) opens that stream.
  streamId: new URLSearchParams(location.search).get('stream'),
  streamInfo: null,
  codec: null,
  expectInit: false,
  mediaSource: null,
  sourceBuffer: null,
  queue: [],
  startClickedAt: null,
  pageTtffMs: null,
  fragments: 0,
  reqs: 0,
  lastFigures: null,
  closeCode: null,
  reconnectTimer: null,
};
// For tests and curious people: the viewer's state, read-only by convention.
window.sinkstreamViewer = state;

function log(line) {
  const el = $('log');
  const t = new Date().toLocaleTimeString();
  el.textContent = `${t} ${line}\n${el.textContent}`.slice(0, 4000);
}

// A prompt the server refused (bad-prompt: e.g. words the model was never trained on) is shown under
// the prompt box until the prompt is edited or one is accepted; '' clears it.
function showPromptError(text) {
  const el = $('prompt-error');
  el.textContent = text.replace(/\s*\[ERR_[A-Z_]+\]$/, '');
  el.hidden = !text;
  $('prompt').setAttribute('aria-invalid', text ? 'true' : 'false');
}

function setStatus(text, kind = '') {
  const el = $('status');
  el.textContent = text;
  el.className = `status ${kind}`;
}

// ---- token ------------------------------------------------------------------------------------
function readToken() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('sinkstream-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search); // keep it out of the address bar
  }
  return sessionStorage.getItem('sinkstream-token') ?? '';
}

// ---- connection -------------------------------------------------------------------------------
function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.ws) state.ws.close();
  const token = $('token').value.trim();
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // The stream's id in the URL lets a load balancer in front of several instances send this
  // connection to the instance that runs the stream (docs/deployment.md).
  const stream = state.streamId ? `&stream=${encodeURIComponent(state.streamId)}` : '';
  const url = `${proto}//${location.host}/ws?v=${PROTOCOL_VERSION}${stream}${token ? `&token=${encodeURIComponent(token)}` : ''}`;
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  setStatus('connecting…');
  ws.onopen = () => setStatus('connected', 'ok');
  ws.onmessage = (ev) => (typeof ev.data === 'string' ? onText(ev.data) : onBinary(ev.data));
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.closeCode = ev.code;
    const why = ev.reason || (ev.code === 1006 ? 'connection refused or lost (wrong token?)' : '');
    setStatus(`disconnected (${ev.code}${why ? `: ${why}` : ''})`, 'bad');
    log(`connection closed: ${ev.code} ${why}`);
    setButtons();
    // Retry unless the server told us something retrying cannot fix.
    if (ev.code !== 4001 && ev.code !== 1008) state.reconnectTimer = setTimeout(connect, 2000);
  };
}

function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    log('not connected');
    return;
  }
  state.ws.send(JSON.stringify({ ...message, req: ++state.reqs }));
}

function onText(text) {
  const m = JSON.parse(text);
  switch (m.type) {
    case 'hello':
      showStreams(m.streams);
      if (state.streamId && m.streams.some((s) => s.id === state.streamId)) send({ type: 'watch', stream: state.streamId });
      break;
    case 'streams':
      showStreams(m.streams);
      break;
    case 'created':
      log(`stream ${m.stream.id} created`);
      showPromptError('');
      break;
    case 'watching':
      state.streamId = m.stream.id;
      state.streamInfo = m.stream;
      resetMedia();
      showStream(m.stream);
      break;
    case 'init':
      state.codec = m.codec;
      state.expectInit = true;
      if (m.reason === 'encoder-restart') log('new encoder: resuming at its first keyframe');
      break;
    case 'encoder-restarted':
      if (m.stream === state.streamId) log(`encoder restarted (${m.restarts}, ${m.cause}): ${m.message}`);
      break;
    case 'stats':
      if (m.figures.stream === state.streamId) showFigures(m.figures);
      break;
    case 'ok':
      if (m.op === 'prompt') showPromptError('');
      if (m.stream) showStream(m.stream);
      log(`${m.op}: ok`);
      send({ type: 'list' });
      break;
    case 'ended':
      log(`stream ${m.stream} ended: ${m.reason}`);
      if (m.stream === state.streamId) {
        state.streamId = null;
        endMedia();
        $('stream-line').textContent = `stream ${m.stream} ended (${m.reason})`;
      }
      send({ type: 'list' });
      break;
    case 'error':
      log(`error (${m.code}): ${m.message}`);
      if (m.code === 'bad-prompt') showPromptError(m.message);
      break;
    default:
      break;
  }
  setButtons();
}

function onBinary(data) {
  if (state.expectInit) {
    state.expectInit = false;
    if (!state.sourceBuffer && !state.mediaSource) openMedia(state.codec);
    append(data);
    return;
  }
  state.fragments++;
  append(data);
}

// ---- media ------------------------------------------------------------------------------------
function resetMedia() {
  endMedia();
  state.queue = [];
  state.fragments = 0;
}

function endMedia() {
  if (state.mediaSource && state.mediaSource.readyState === 'open') {
    try {
      state.mediaSource.endOfStream();
    } catch {}
  }
  state.mediaSource = null;
  state.sourceBuffer = null;
}

function openMedia(codec) {
  const type = `video/mp4; codecs="${codec ?? 'avc1.42E01E'}"`;
  if (!window.MediaSource || !MediaSource.isTypeSupported(type)) {
    log(`this browser cannot play ${type}`);
    return;
  }
  const ms = new MediaSource();
  state.mediaSource = ms;
  video.src = URL.createObjectURL(ms);
  ms.addEventListener('sourceopen', () => {
    if (state.mediaSource !== ms) return;
    const sb = ms.addSourceBuffer(type);
    sb.mode = 'sequence';
    sb.addEventListener('updateend', pump);
    sb.addEventListener('error', () => log('media error while appending'));
    state.sourceBuffer = sb;
    pump();
  });
}

function append(data) {
  state.queue.push(data);
  if (state.queue.length > MAX_QUEUE) state.queue.splice(1, state.queue.length - MAX_QUEUE);
  pump();
}

function pump() {
  const sb = state.sourceBuffer;
  if (!sb || sb.updating || state.queue.length === 0) return;
  try {
    sb.appendBuffer(state.queue[0]);
    state.queue.shift();
  } catch (e) {
    if (e.name === 'QuotaExceededError') trim(true);
    else log(`append failed: ${e.message}`);
  }
}

function trim(force) {
  const sb = state.sourceBuffer;
  if (!sb || sb.updating || sb.buffered.length === 0) return;
  const start = sb.buffered.start(0);
  const keepFrom = video.currentTime - (force ? 2 : KEEP_BEHIND_S);
  if (keepFrom - start > 1) sb.remove(start, keepFrom);
}

// Near the live edge: jump when too far behind, keep playing, drop old media.
setInterval(() => {
  const sb = state.sourceBuffer;
  if (!sb || sb.buffered.length === 0) return;
  const end = sb.buffered.end(sb.buffered.length - 1);
  const behind = end - video.currentTime;
  if (behind > LIVE_EDGE_MAX_S) video.currentTime = end - LIVE_EDGE_TARGET_S;
  if (video.paused && behind > 0.05) video.play().catch(() => undefined);
  $('fig-edge').textContent = `${Math.max(0, behind).toFixed(2)} s`;
  trim(false);
}, 250);

video.addEventListener('timeupdate', () => {
  if (state.pageTtffMs === null && state.startClickedAt !== null && video.currentTime > 0) {
    state.pageTtffMs = performance.now() - state.startClickedAt;
  }
});

function decodedFrames() {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  return q ? q.totalVideoFrames : video.webkitDecodedFrameCount ?? 0;
}

// ---- display ----------------------------------------------------------------------------------
const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`);
const pct = (p) => `${Math.round(p.p50)} / ${Math.round(p.p95)} / ${Math.round(p.p99)} ms`;

function showStreams(streams) {
  const sel = $('streams');
  sel.replaceChildren(
    ...(streams.length ? streams : [{ id: '', prompt: '(none)' }]).map((s) => {
      const o = document.createElement('option');
      o.value = s.id;
      o.textContent = s.id ? `${s.id} — ${s.prompt.slice(0, 40)} (${s.viewers} watching)` : s.prompt;
      return o;
    }),
  );
  if (state.streamId) sel.value = state.streamId;
}

function showStream(info) {
  state.streamInfo = info;
  $('stream-line').textContent = `stream ${info.id} · ${info.width}×${info.height} @ ${info.fps} fps · ${info.cache.policy}, sink ${info.cache.sink}, window ${info.cache.window}${info.records ? ' · recording' : ''} · “${info.prompt}”`;
}

function showFigures(f) {
  state.lastFigures = f;
  $('fig-fps').textContent = `${f.fps.toFixed(1)} / ${f.generationFps.toFixed(1)} / ${f.targetFps}`;
  $('fig-ttff').textContent = ms(f.ttffMs);
  $('fig-latency').textContent = pct(f.latencyMs);
  $('fig-jitter').textContent = pct(f.jitterMs);
  $('fig-misses').textContent = `${f.deadlineMisses} (${(100 * f.missRate).toFixed(1)} %)`;
  $('fig-frames').textContent = `${f.frames} / ${f.framesDelivered} / ${decodedFrames()}`;
  $('fig-viewers').textContent = `${f.viewers} / ${f.skippedFragments} / ${f.encoderRestarts}`;
  showScheduler(f.scheduler);
  showCache(f);
}

function showScheduler(s) {
  if (!s) return;
  const blocks = Object.entries(s.blocksBySteps).sort((a, b) => Number(b[0]) - Number(a[0])).map(([steps, n]) => `${steps}:${n}`).join(' ');
  $('fig-sched-steps').textContent = `${s.steps} (${s.fullSteps}) / ${blocks || '–'}`;
  $('fig-sched-delay').textContent = ms(s.plannedDelayMs);
  const last = s.decisions[s.decisions.length - 1];
  $('fig-sched-decision').textContent = last ? `${last.kind}: ${last.message}` : '–';
}

function showCache(f) {
  const strip = $('cache-strip');
  const capacity = f.cacheOccupancy > 0 ? Math.max(f.cache.length, Math.round(f.cache.length / f.cacheOccupancy)) : f.cache.length;
  const cells = f.cache.map((slot) => {
    const el = document.createElement('span');
    el.className = `slot ${slot.role}`;
    el.title = `frame ${slot.frame} · ${slot.role} · position ${slot.position}`;
    const b = document.createElement('b');
    b.textContent = String(slot.frame);
    const i = document.createElement('i');
    i.textContent = `@${slot.position}`;
    el.append(b, i);
    return el;
  });
  for (let k = f.cache.length; k < capacity; k++) {
    const el = document.createElement('span');
    el.className = 'slot free';
    el.textContent = '·';
    cells.push(el);
  }
  strip.replaceChildren(...cells);
  $('cache-caption').textContent = `${f.cache.length} frames held · occupancy ${(100 * f.cacheOccupancy).toFixed(0)} %`;
}

function setButtons() {
  const open = state.ws && state.ws.readyState === WebSocket.OPEN;
  $('start').disabled = !open;
  $('stop').disabled = !open || !state.streamId;
  $('switch').disabled = !open || !state.streamId;
  $('apply').disabled = !open || !state.streamId;
}

function cacheSettings() {
  const window = Number($('window').value);
  const sink = Math.min(Number($('sink').value), window - 1);
  return { policy: $('policy').value, sink, window };
}

// ---- controls ---------------------------------------------------------------------------------
$('start').addEventListener('click', () => {
  const prompt = $('prompt').value.trim();
  if (!prompt) return log('type a prompt first');
  state.startClickedAt = performance.now();
  state.pageTtffMs = null;
  send({ type: 'create', prompt, overrides: { cache: cacheSettings() }, watch: true });
});
$('stop').addEventListener('click', () => state.streamId && send({ type: 'stop', stream: state.streamId }));
$('switch').addEventListener('click', () => {
  const prompt = $('prompt').value.trim();
  if (state.streamId && prompt) send({ type: 'prompt', stream: state.streamId, prompt });
});
$('prompt').addEventListener('input', () => showPromptError(''));
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $(state.streamId ? 'switch' : 'start').click();
});
$('apply').addEventListener('click', () => state.streamId && send({ type: 'retune', stream: state.streamId, cache: cacheSettings() }));
$('watch').addEventListener('click', () => {
  const id = $('streams').value;
  if (id) {
    state.startClickedAt = performance.now();
    state.pageTtffMs = null;
    send({ type: 'watch', stream: id });
  }
});
$('reconnect').addEventListener('click', () => {
  sessionStorage.setItem('sinkstream-token', $('token').value.trim());
  connect();
});
for (const id of ['sink', 'window']) {
  $(id).addEventListener('input', () => ($(`${id}-value`).textContent = $(id).value));
}
setInterval(() => state.ws?.readyState === WebSocket.OPEN && send({ type: 'list' }), 5000);

$('token').value = readToken();
setButtons();
connect();
