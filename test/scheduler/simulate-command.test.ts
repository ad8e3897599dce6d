// The `simulate` command (src/cli/commands/simulate.ts), run in-process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command } from 'commander';
import { register } from '../../src/cli/commands/simulate.js';
import { SinkstreamError } from '../../src/errors.js';

async function run(args: string[]): Promise<string> {
  const program = new Command('sinkstream').exitOverride();
  register(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return out;
}

test('--json prints exactly one object with a scenarios array', async () => {
  const out = await run(['simulate', '--json', '--scenario', 'overload', '--scenario', 'pipeline-2']);
  const lines = out.trim().split('\n');
  assert.is(lines.length, 1);
  const report = JSON.parse(lines[0]);
  assert.equal(report.scenarios.map((s: { name: string }) => s.name), ['overload', 'pipeline-2']);
  const s = report.scenarios[0];
  for (const key of ['name', 'admitted', 'refused', 'missedDeadlines', 'framesDelivered', 'p99LatencyMs']) assert.ok(key in s, key);
});

test('the table by default; --set reaches the scheduler section', async () => {
  const table = await run(['simulate', '--scenario', 'overload']);
  assert.match(table, /^scenario/);
  const ladder = JSON.parse(await run(['simulate', '--json', '--scenario', 'overload', '--set', 'scheduler.stepLadder=[4,3,2,1]']));
  assert.ok(ladder.scenarios[0].admitted > 4, 'a lower rung admits more streams');
});

test('an unknown scenario is bad input, naming the known ones', async () => {
  try {
    await run(['simulate', '--scenario', 'nope']);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, SinkstreamError);
    assert.ok((e as SinkstreamError).isBadInput);
    assert.match((e as Error).message, /--scenario nope.*steady/);
  }
});

test.run();
