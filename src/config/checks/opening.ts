/** Keys of the scene opening (src/scene/opening.ts) that cannot work together. */
import type { ConfigProblem } from '../problems.js';
import type { Config } from '../schema.js';

export function openingConfigProblems(config: Config): ConfigProblem[] {
  if (config.generation.opening !== 'scene') return [];
  const problems: ConfigProblem[] = [];
  if (config.model.scene === undefined) {
    problems.push({ path: 'model.scene', message: "generation.opening 'scene' needs the folder of the model's scene spec (palette.json), e.g. models/demo" });
  }
  if (config.decoder.kind !== 'space-to-depth') {
    problems.push({ path: 'generation.opening', message: `'scene' draws pixels and needs decoder.kind 'space-to-depth' (got '${config.decoder.kind}'); use 'noise'` });
  }
  return problems;
}
