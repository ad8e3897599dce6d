/** The runtime's stream spec and placement question with classifier-free guidance: two forwards a denoising step. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../src/config/load.js';
import { forwardsPerStep, scheduledStreamSpec } from '../../src/realtime/stream-spec.js';
import { placementQuestion } from '../../src/realtime/placement.js';
import { CostModel } from '../../scheduler/cost-model.js';
import { coefficients } from '../scheduler/helpers/drive.js';

const costs = { costModel: new CostModel({ gpu0: coefficients() }), devices: {} };

test('guidance 1: one forward a step, the spec as before (no forwardsPerStep key)', () => {
  const config = loadConfig({});
  assert.is(forwardsPerStep(config), 1);
  const spec = scheduledStreamSpec(config, 's', { videoFramesPerLatentFrame: 1 });
  assert.not.ok('forwardsPerStep' in spec);
  assert.not.ok('openingForwardsPerStep' in spec);
});

test('a guided opening (generation.openingGuidance) gives the first block its own forwards a step', () => {
  const spec = (set: string[]) => scheduledStreamSpec(loadConfig({ set }), 's', { videoFramesPerLatentFrame: 1 });
  const opened = spec(['generation.opening=noise', 'generation.openingGuidance=3']);
  assert.is(opened.openingForwardsPerStep, 2);
  assert.not.ok('forwardsPerStep' in opened);
  // guided everywhere but the opening
  const reverse = spec(['generation.opening=noise', 'generation.guidance=2.5', 'generation.openingGuidance=1']);
  assert.is(reverse.forwardsPerStep, 2);
  assert.is(reverse.openingForwardsPerStep, 1);
  // the same scale as the others, or a drawn opening (not denoised): no key
  assert.not.ok('openingForwardsPerStep' in spec(['generation.opening=noise', 'generation.guidance=2', 'generation.openingGuidance=2']));
  assert.not.ok('openingForwardsPerStep' in spec(['generation.opening=scene', 'generation.openingGuidance=3']));
});

test('guidance 2 (and 0): two forwards a step in the stream spec and the placement question', () => {
  for (const g of ['2', '0']) {
    const config = loadConfig({ set: [`generation.guidance=${g}`] });
    assert.is(scheduledStreamSpec(config, 's', { videoFramesPerLatentFrame: 1 }).forwardsPerStep, 2);
    assert.is(placementQuestion(config, costs).stream.forwardsPerStep, 2);
  }
});

test.run();
