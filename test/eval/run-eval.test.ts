/**
 * The demo model end to end through the library API (real loop, ORT CPU engine, cache presets):
 * the prompted colours are present and moving, which random weights fail; and a short-horizon
 * evaluation writes its table, JSON and plots.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runEval, threadsPerJob, type RunResult } from '../../src/eval/run-eval.js';
import { buildReport, writeReport } from '../../src/eval/report.js';
import { checkPromptedMotion, METRIC_KEYS } from '../../src/eval/metrics.js';

const prompt = 'a red circle and a blue square bouncing on a dark green background';
let trainedRuns: Promise<RunResult[]> | null = null;
/** The demo model's runs, made once on first use: each test that reads them asks for them itself. */
const trained = (): Promise<RunResult[]> =>
  (trainedRuns ??= runEval({ policies: ['streamingllm-sink', 'reward-forcing-ema-sink'], prompts: [prompt], seeds: [0], seconds: 2 }));

test('demo model, opening from noise as configured: the prompted colours are present and moving', async () => {
  for (const run of await trained()) {
    const check = checkPromptedMotion(run.seconds);
    assert.ok(check.ok, `${run.policy}: ${check.reason}`);
  }
});

test('random weights fail the same check', async () => {
  const [run] = await runEval({ policies: ['longlive-sink'], prompts: [prompt], seeds: [0], seconds: 2, set: ['model.weights=synthetic'] });
  const check = checkPromptedMotion(run.seconds);
  assert.not.ok(check.ok, `synthetic weights passed: fidelity ${check.colourFidelity}, speed ${check.speed}`);
});

test('a short-horizon evaluation writes the table, the JSON and one plot per metric', async () => {
  const runs = await trained();
  const report = buildReport(runs, 2);
  assert.equal(report.policies.map((p) => p.policy), ['streamingllm-sink', 'reward-forcing-ema-sink']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sinkstream-eval-'));
  writeReport(report, runs, dir, { seconds: 2 });
  const md = readFileSync(path.join(dir, 'results.md'), 'utf8');
  assert.match(md, /\| streamingllm-sink \| 1\.00|\| streamingllm-sink \| 0\.\d\d/);
  const json = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'));
  assert.is(json.runs.length, 2);
  assert.is(json.runs[0].seconds.length, 2);
  for (const m of METRIC_KEYS) assert.ok(existsSync(path.join(dir, `${m}.png`)), m);
  assert.ok(existsSync(path.join(dir, 'filmstrip.png')));
});

test('--jobs renders videos at once and keeps the order and the measures of one at a time', async () => {
  const options = { policies: ['streamingllm-sink', 'self-forcing-window'], prompts: [prompt], seeds: [0, 1], seconds: 1 };
  const one = await runEval(options);
  const two = await runEval({ ...options, jobs: 3 });
  const key = (r: RunResult) => `${r.policy}/${r.seed}`;
  assert.equal(two.map(key), one.map(key));
  assert.equal(two.map(key), ['streamingllm-sink/0', 'streamingllm-sink/1', 'self-forcing-window/0', 'self-forcing-window/1']);
  assert.equal(two.map((r) => r.seconds), one.map((r) => r.seconds));
});

test('--jobs: each video gets a share of the cores, at least one thread; a bad count is refused', async () => {
  assert.is(threadsPerJob(1, 16), 16);
  assert.is(threadsPerJob(3, 16), 5);
  assert.is(threadsPerJob(4, 2), 1);
  for (const jobs of [0, 1.5]) {
    try {
      await runEval({ policies: ['streamingllm-sink'], prompts: [prompt], seeds: [0], seconds: 1, jobs });
      assert.unreachable(`jobs ${jobs} accepted`);
    } catch (e) {
      assert.match(String(e), /--jobs/);
    }
  }
});

test('--jobs: a video that fails fails the run; the others finish the video they hold and start no new one', async () => {
  const started = new Set<string>();
  const failure = new Error('the first video to end fails');
  const run = runEval({
    policies: ['streamingllm-sink', 'self-forcing-window'],
    prompts: [prompt],
    seeds: [0, 1],
    seconds: 1,
    jobs: 2,
    // One second a video: a video reports once, at its end. The first to report fails while the other worker still
    // holds its video (the two streamingllm-sink ones are taken first, one a worker).
    onProgress: ({ policy, seed }) => {
      started.add(`${policy}/${seed}`);
      if (started.size === 1) throw failure;
    },
  });
  try {
    await run;
    assert.unreachable('the run resolved');
  } catch (e) {
    assert.is(e, failure);
  }
  // Once the other worker has finished its video (both streamingllm-sink videos reported; at most a minute on a busy
  // machine), a worker that went on would start the next video and report it within a few seconds.
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  for (let waited = 0; started.size < 2 && waited < 60_000; waited += 100) await sleep(100);
  await sleep(3000);
  assert.ok([...started].every((v) => v.startsWith('streamingllm-sink/')), `no new video started after the failure: ${[...started]}`);
});

test.run();
