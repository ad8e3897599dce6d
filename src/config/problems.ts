/**
 * Keys that are each valid alone but cannot work together. The schema checks each key; the checks in
 * ./checks/ (cache, engine, opening) say how they combine. The config loader reports every problem
 * and exits with status 2.
 */
import type { Config } from './schema.js';
import { cacheConfigProblems } from './checks/cache.js';
import { engineConfigProblems } from './checks/engine.js';
import { openingConfigProblems } from './checks/opening.js';

export interface ConfigProblem {
  /** The key at fault, e.g. `cache.window`. */
  path: string;
  message: string;
}

export function configProblems(config: Config): ConfigProblem[] {
  return [...cacheConfigProblems(config), ...openingConfigProblems(config), ...engineConfigProblems(config)];
}
