/**
 * Render jobs on their own (the HTTP side is in api-v1.test.ts): at most maxRunning at once, the
 * rest queued in order, the queue bounded; settings limited to what shapes the clip; a cancelled
 * running job keeps a playable partial file; an ended job and its file are forgotten after the TTL.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { loadConfig } from '../../src/config/load.js';
import type { Timers } from '../../src/realtime/runtime-scheduler.js';
import { RenderJobs, type RenderJobsOptions } from '../../src/serve/render-jobs.js';
import { probeVideo, tempDir, waitFor } from '../encode/helpers.js';
import { StepsGenerator } from './helpers/steps-generator.js';

/** Timers fired by hand. */
function manualTimers(): Timers & { fire(): void; pending(): number } {
  const due = new Map<number, () => void>();
  let n = 0;
  return {
    set: (fn) => (due.set(++n, fn), n),
    clear: (h) => void due.delete(h as number),
    fire: () => {
      const fns = [...due.values()];
      due.clear();
      for (const f of fns) f();
    },
    pending: () => due.size,
  };
}

function jobs(over: Partial<RenderJobsOptions> = {}) {
  const generators: StepsGenerator[] = [];
  const timers = manualTimers();
  const dir = tempDir('render-jobs');
  const r = new RenderJobs({
    config: loadConfig(),
    createGenerator: async () => {
      const g = new StepsGenerator(5);
      generators.push(g);
      return g;
    },
    dir,
    maxRunning: 1,
    maxQueued: 2,
    maxFrames: 1000,
    ttlMs: 60_000,
    idPrefix: () => 'box-',
    timers,
    ...over,
  });
  return { r, generators, timers, dir };
}

test('one job at a time, the next queued; a done job has its file with the frames asked; forgotten after the TTL with its file', async () => {
  const { r, generators, timers, dir } = jobs();
  try {
    const a = r.submit({ frames: 7, prompt: 'a red circle bouncing on a black background' });
    const b = r.submit({ frames: 5 });
    assert.ok(a.ok && b.ok);
    if (!a.ok || !b.ok) return;
    assert.match(a.value.id, /^box-[0-9a-f]{10}$/);
    assert.is(r.get(b.value.id).ok && (r.get(b.value.id) as any).value.state, 'queued');
    assert.is((r.get(b.value.id) as any).value.queuePosition, 1);
    const done = await waitFor('the first job to finish', () => {
      const j = (r.get(a.value.id) as any).value;
      return j.state === 'done' ? j : undefined;
    }, 20_000);
    assert.is(done.framesWritten, 7);
    assert.is(done.framesInFile, 7);
    assert.is(done.progress, 1);
    assert.ok(done.fileReady);
    assert.is(generators.length >= 1, true);
    const file = r.file(a.value.id);
    assert.ok(file.ok);
    if (!file.ok) return;
    assert.is((await probeVideo(file.value.path)).frames, 7);
    await waitFor('the second job to finish', () => ((r.get(b.value.id) as any).value.state === 'done' ? true : undefined), 20_000);
    assert.is(generators.length, 2);
    assert.ok(generators.every((g) => g.closed), 'each job closes its generator');
    // Both ended: the TTL forgets them and deletes the files.
    timers.fire();
    assert.is(r.get(a.value.id).ok, false);
    assert.is(fs.existsSync(file.value.path), false);
    assert.equal(r.list(), []);
  } finally {
    await r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cancel: a running job stops with a playable partial file; a queued one never starts; the queue is bounded', async () => {
  const { r, generators, dir } = jobs({ maxQueued: 1 });
  try {
    const long = r.submit({ frames: 900 });
    const queued = r.submit({ frames: 3 });
    const refused = r.submit({ frames: 3 });
    assert.ok(long.ok && queued.ok);
    assert.is(refused.ok, false);
    assert.is(!refused.ok && refused.code, 'stream-limit');
    if (!long.ok || !queued.ok) return;
    await waitFor('some frames', () => ((r.get(long.value.id) as any).value.framesWritten >= 6 ? true : undefined), 20_000);
    const q = await r.cancel(queued.value.id);
    assert.is(q.ok && q.value.state, 'cancelled');
    const c = await r.cancel(long.value.id);
    assert.ok(c.ok);
    if (!c.ok) return;
    assert.is(c.value.state, 'cancelled');
    assert.ok(c.value.framesWritten < 900);
    assert.ok(c.value.fileReady);
    const file = r.file(long.value.id);
    assert.ok(file.ok);
    if (!file.ok) return;
    assert.is((await probeVideo(file.value.path)).frames, c.value.framesInFile);
    assert.is(generators.length, 1, 'the cancelled queued job never started a generator');
    assert.is(r.file(queued.value.id).ok, false);
  } finally {
    await r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('settings: generation and cache keys apply; files, devices and the server stay the operator’s', () => {
  const { r, dir } = jobs();
  try {
    const bad = r.submit({ set: ['model.weights=/etc/passwd'] });
    assert.is(bad.ok, false);
    assert.is(!bad.ok && bad.code, 'invalid-config');
    assert.match(!bad.ok ? bad.message : '', /model\.weights/);
    const invalid = r.submit({ set: ['cache.window=abc'] });
    assert.is(!invalid.ok && invalid.code, 'invalid-config');
    const tooLong = r.submit({ frames: 5000 });
    assert.match(!tooLong.ok ? tooLong.message : '', /serve\.maxRenderFrames/);
    const ok = r.submit({ set: ['generation.fps=8'], seconds: 2 });
    assert.ok(ok.ok);
    assert.is(ok.ok && ok.value.framesRequested, 16);
    assert.is(ok.ok && ok.value.fps, 8);
  } finally {
    void r.close().then(() => fs.rmSync(dir, { recursive: true, force: true }));
  }
});

test.run();
