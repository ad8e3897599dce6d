/**
 * A real browser plays a live stream: Debian's chromium (headless, driven by playwright-core) opens
 * the viewer page, presses Start, and the video element's currentTime advances while its decoded
 * frame count grows. Skips, saying why, when /usr/bin/chromium is absent
 * (scripts/install-browser.sh installs it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer } from './helpers/server-fixture.js';

const CHROMIUM = process.env.SINKSTREAM_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

if (!existsSync(CHROMIUM)) {
  console.log(`SKIP browser test: ${CHROMIUM} not found (run: bash scripts/install-browser.sh)`);
  test.skip('the viewer page plays a live stream in chromium', () => {});
} else {
  test('the viewer page plays a live stream in chromium', async () => {
    const { chromium } = await import('playwright-core');
    const server = await startTestServer();
    const profile = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-chromium-'));
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('response', (r) => r.status() >= 400 && problems.push(`${r.status()} ${r.url()}`)); // e.g. a favicon 404
      await page.goto(server.url);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'connected', undefined, { timeout: 15_000 });
      const supported = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="avc1.64000a"'));
      assert.ok(supported, 'this chromium plays H.264 through MSE');
      await page.fill('#prompt', 'a blue square bouncing on a dark blue background');
      await page.click('#start');

      type Sample = { t: number; decoded: number };
      const sample = () =>
        page.evaluate((): Sample => {
          const v = document.getElementById('video') as HTMLVideoElement;
          return { t: v.currentTime, decoded: v.getVideoPlaybackQuality().totalVideoFrames };
        });
      await page.waitForFunction(
        () => {
          const v = document.getElementById('video') as HTMLVideoElement;
          return v.currentTime > 0.3 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
        },
        undefined,
        { timeout: 60_000, polling: 200 },
      );
      const a = await sample();
      await page.waitForTimeout(3000);
      const b = await sample();
      assert.ok(b.t > a.t, `currentTime advances: ${a.t} -> ${b.t}`);
      assert.ok(b.decoded > a.decoded, `decoded frames grow: ${a.decoded} -> ${b.decoded}`);

      // the page shows the figures and the cache picture
      await page.waitForFunction(() => document.querySelectorAll('#cache-strip .slot.sink').length > 0, undefined, { timeout: 15_000 });
      const ttff = await page.textContent('#fig-ttff');
      assert.match(ttff ?? '', /^\d+ ms$/);
      // a prompt the model cannot draw: the refusal is shown beside the prompt box, the stream plays on
      assert.ok(await page.isHidden('#prompt-error'), 'no error shown before one happens');
      await page.fill('#prompt', 'a purple circle on a black background');
      await page.click('#switch');
      await page.waitForSelector('#prompt-error', { state: 'visible', timeout: 15_000 });
      const refusal = (await page.textContent('#prompt-error')) ?? '';
      assert.match(refusal, /'purple' is not an object colour/);
      assert.match(refusal, /red, green, blue, yellow, magenta, cyan, white/, 'says what the model can draw');
      assert.is(await page.getAttribute('#prompt', 'aria-invalid'), 'true');
      // switch the prompt and retune the cache from the page; the accepted prompt clears the error
      await page.fill('#prompt', 'a red circle bouncing on a black background');
      await page.click('#switch');
      await page.waitForFunction(() => /“a red circle bouncing on a black background”/.test(document.getElementById('stream-line')?.textContent ?? ''), undefined, { timeout: 15_000 });
      assert.ok(await page.isHidden('#prompt-error'), 'the error is cleared once a prompt is accepted');
      await page.selectOption('#policy', 'window');
      await page.fill('#window', '9');
      await page.click('#apply');
      await page.waitForFunction(() => /window, sink \d+, window 9/.test(document.getElementById('stream-line')?.textContent ?? ''), undefined, { timeout: 15_000 });
      const c = await sample();
      await page.waitForTimeout(1500);
      const d = await sample();
      assert.ok(d.t > c.t && d.decoded > c.decoded, 'still playing after the switch');
      if (process.env.SINKSTREAM_SCREENSHOT) await page.screenshot({ path: process.env.SINKSTREAM_SCREENSHOT, fullPage: true });
      const viewer = await page.evaluate(() => ({
        ttff: (window as unknown as { sinkstreamViewer: { pageTtffMs: number } }).sinkstreamViewer.pageTtffMs,
      }));
      console.log(`browser: page TTFF ${Math.round(viewer.ttff)} ms; currentTime ${a.t.toFixed(2)} -> ${b.t.toFixed(2)} s, decoded ${a.decoded} -> ${b.decoded} frames in 3 s`);
      assert.equal(problems, []);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      await server.close();
    }
  });
}

test.run();
