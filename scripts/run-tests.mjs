#!/usr/bin/env node
// Runs the uvu suites under test/ (TypeScript through tsx) tier by tier, after typechecking src,
// scheduler, test and tools (tsconfig.test.json), and ends with one plain line `N passed, N failed`,
// which uvu itself does not print (a type error counts as one failure).
//
//   node scripts/run-tests.mjs                   typecheck, then every tier (unit, engine, e2e)
//   node scripts/run-tests.mjs --tier unit       typecheck, then one tier (repeatable; or a,b)
//   node scripts/run-tests.mjs serve/idle        only test files whose path matches the regex, no typecheck
//   --typecheck / --no-typecheck                 force the typecheck on or off
// A tier whose process does not exit within RUN_TESTS_EXIT_GRACE_MS (20 s) of uvu's summary (a test
// left a server, timer or child process running) is killed, and that counts as one more failure.
//
// Tiers (TIERS below, first match wins, everything else is unit):
//   unit    pure code: no engine forward, no ffmpeg, no server, no child process
//   engine  an engine, decoder or text encoder runs (ONNX Runtime, the native addon if built)
//   e2e     a server, the CLI, ffmpeg or another process end to end
// Performance figures are benchmarks, not tests: tools/bench (npm run bench:serve, ...); no test
// asserts the machine's speed.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const TIER_ORDER = ['unit', 'engine', 'e2e'];

/** [tier, regex over the path under test/]; the first match wins, unit otherwise. */
export const TIERS = [
  ['unit', /^serve\/(viewer-hub|protocol|playout-ledger|stream-stats|fmp4-splitter|auth|spare-generators)\.test\.ts$/],
  ['e2e', /^(cli|e2e|serve)\//],
  ['e2e', /^encode\/(fmp4-stream|mp4-file-writer|raw-video-encoder)\.test\.ts$/],
  ['e2e', /^(eval\/run-eval|(schedule|realtime)\/render-realtime|tools\/(engine-video-diff|run-parallel))\.test\.ts$/],
  ['engine', /^(engine|onnx|decode|tools)\//],
  ['engine', /^loop\/(generator|generator-pipeline|generator-taehv|warmup|preset-frames)\.test\.ts$/],
  ['engine', /^((schedule|realtime)\/(calibration|engine-calibration|runtime-scheduler)|text\/umt5-text-encoder|model\/load-checkpoint|config\/real-model-configs)\.test\.ts$/],
];

export function tierOf(file) {
  for (const [tier, re] of TIERS) if (re.test(file)) return tier;
  return 'unit';
}

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

function testFiles(dir = path.join(root, 'test'), prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : testFiles(path.join(dir, e.name), rel);
    return rel.endsWith('.test.ts') ? [rel] : [];
  });
}

/** How long a suite's process may live on after uvu printed its summary (a test left a server, timer or child running). */
const EXIT_GRACE_MS = Number(process.env.RUN_TESTS_EXIT_GRACE_MS ?? 20_000);

function run(cmd, args, pipeOut) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', pipeOut ? 'pipe' : 'inherit', 'inherit'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let hung = false;
    let exitTimer = null;
    child.stdout?.on('data', (chunk) => {
      out += chunk.toString();
      process.stdout.write(chunk);
      if (exitTimer === null && /Duration:\s+[\d.]+m?s/.test(out)) {
        exitTimer = setTimeout(() => {
          hung = true;
          process.stdout.write(`\nrun-tests: the suites finished but their process did not exit within ${EXIT_GRACE_MS / 1000} s (a test left a handle open); killed\n`);
          child.kill('SIGKILL');
        }, EXIT_GRACE_MS);
      }
    });
    child.on('close', (code, signal) => {
      if (exitTimer) clearTimeout(exitTimer);
      resolve({ code, signal, out, hung });
    });
  });
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function runTier(files) {
  const uvuBin = path.join(root, 'node_modules', 'uvu', 'bin.js');
  const pattern = `^(${files.map(escape).join('|')})$`;
  const { code, signal, out, hung } = await run(process.execPath, ['--import', 'tsx', uvuBin, 'test', pattern], true);
  const read = (label) => Number((out.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? 0);
  const passed = read('Passed');
  let failed = read('Total') - passed - read('Skipped');
  if (hung) failed++; // the process would not exit: counted as one more failure
  else if ((code !== 0 || signal) && failed === 0) failed = 1; // a crash before uvu's summary is a failure
  return { passed, failed };
}

async function main() {
  const args = process.argv.slice(2);
  const tiers = args.flatMap((a, i) => (args[i - 1] === '--tier' ? a.split(',') : []));
  for (const t of tiers) {
    if (!TIER_ORDER.includes(t)) {
      console.error(`unknown tier "${t}": expected one of ${TIER_ORDER.join(', ')} (benchmarks: tools/bench)`);
      process.exit(2);
    }
  }
  const positional = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--tier');
  const pattern = positional[0] ? new RegExp(positional[0], 'i') : null;
  const typecheck = args.includes('--typecheck') || (!args.includes('--no-typecheck') && pattern === null);

  let passed = 0;
  let failed = 0;
  const lines = [];
  if (typecheck) {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', 'tsconfig.test.json'], false);
    const ok = r.code === 0 && !r.signal;
    if (!ok) failed++; // counted as one failure; a clean typecheck adds no pass
    lines.push(`typecheck (src, scheduler, test, tools): ${ok ? 'ok' : 'FAILED'}`);
  }
  const files = testFiles().filter((f) => pattern === null || pattern.test(f)).sort();
  for (const tier of tiers.length ? tiers : TIER_ORDER) {
    const inTier = files.filter((f) => tierOf(f) === tier);
    if (inTier.length === 0) continue;
    process.stdout.write(`\n== tier ${tier}: ${inTier.length} files ==\n`);
    const r = await runTier(inTier);
    passed += r.passed;
    failed += r.failed;
    lines.push(`tier ${tier}: ${r.passed} passed, ${r.failed} failed (${inTier.length} files)`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n${passed} passed, ${failed} failed\n`);
  process.exit(failed > 0 ? 1 : 0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
