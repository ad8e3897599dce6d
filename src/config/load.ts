/**
 * Loads a YAML configuration, applies `extends:` chains and `--set key=value` overrides, resolves
 * file paths, and validates the result against the schema once. Everything past this boundary gets
 * a complete, typed `Config`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { SinkstreamError } from '../errors.js';
import { cacheConfigProblems } from '../cache/validate.js';
import { openingConfigProblems } from '../scene/opening.js';
import { engineConfigProblems } from '../engine/validate.js';
import { projectRoot } from '../util/project-root.js';

type Plain = Record<string, unknown>;

export { projectRoot };

export const defaultConfigPath: string = path.join(projectRoot, 'configs', 'default.yaml');

/** Keys holding file paths: relative paths resolve against the YAML file that sets them. */
const PATH_KEYS: ReadonlyArray<readonly string[]> = [
  ['model', 'weights'],
  ['model', 'openingWeights'],
  ['model', 'lora'],
  ['model', 'scene'],
  ['text', 'vocab'],
  ['text', 'path'],
  ['text', 'weights'],
  ['text', 'tokenizer'],
  ['text', 'cacheDir'],
  ['decoder', 'path'],
  ['decoder', 'weights'],
];

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  }
  return out;
}

function resolvePaths(doc: Plain, baseDir: string): void {
  for (const [section, key] of PATH_KEYS) {
    const s = doc[section];
    if (!isPlain(s)) continue;
    const v = s[key];
    if (typeof v === 'string' && v !== 'synthetic' && !path.isAbsolute(v)) s[key] = path.resolve(baseDir, v);
  }
}

function readYamlFile(file: string, chain: string[] = []): Plain {
  const abs = path.resolve(file);
  if (chain.includes(abs)) {
    throw new SinkstreamError('ERR_CONFIG_FILE', `${abs}: 'extends' forms a cycle (${[...chain, abs].join(' -> ')})`);
  }
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new SinkstreamError('ERR_CONFIG_FILE', `cannot read configuration file ${abs}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` (line ${e.linePos[0].line})` : '';
    throw new SinkstreamError('ERR_CONFIG_FILE', `${abs}${where}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isPlain(doc)) throw new SinkstreamError('ERR_CONFIG_FILE', `${abs}: expected a mapping of sections at the top level`);
  resolvePaths(doc, path.dirname(abs));
  const { extends: parent, ...rest } = doc;
  if (parent === undefined) return rest;
  if (typeof parent !== 'string') {
    throw new SinkstreamError('ERR_CONFIG_INVALID', `${abs}: 'extends' must be a path to another YAML file`);
  }
  return deepMerge(readYamlFile(path.resolve(path.dirname(abs), parent), [...chain, abs]), rest);
}

/** Parses `a.b.c=value` (value read as YAML: numbers, booleans, [lists] work) into a nested object. */
export function parseOverride(assignment: string): Plain {
  const eq = assignment.indexOf('=');
  if (eq <= 0) {
    throw new SinkstreamError('ERR_ARGUMENT', `--set ${assignment}: expected key=value, e.g. --set cache.window=12`);
  }
  const keyPath = assignment.slice(0, eq).trim().split('.');
  if (keyPath.some((k) => k === '')) throw new SinkstreamError('ERR_ARGUMENT', `--set ${assignment}: empty key in '${assignment.slice(0, eq)}'`);
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = raw === '' ? '' : parseYaml(raw);
  } catch {
    value = raw;
  }
  let obj: Plain = {};
  const root = obj;
  keyPath.forEach((k, i) => {
    if (i === keyPath.length - 1) obj[k] = value;
    else obj = (obj[k] = {}) as Plain;
  });
  return root;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (issue.path.length ? `${issue.path.join('.')}.${k}` : k));
    return `${keys.join(', ')}: unknown key${keys.length > 1 ? 's' : ''}`;
  }
  return `${at}: ${issue.message}`;
}

/** Validates a plain object (already merged, paths resolved). Throws ERR_CONFIG_INVALID listing every problem. */
export function validateConfig(doc: unknown, source = 'configuration'): Config {
  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(describeIssue);
    throw new SinkstreamError('ERR_CONFIG_INVALID', `${source}: invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const problems = [...cacheConfigProblems(parsed.data), ...openingConfigProblems(parsed.data), ...engineConfigProblems(parsed.data)];
  if (problems.length) {
    const lines = problems.map((p) => `${p.path}: ${p.message}`);
    throw new SinkstreamError('ERR_CONFIG_INVALID', `${source}: impossible combination:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

export interface LoadOptions {
  /** YAML file; default configs/default.yaml. */
  file?: string;
  /** `key=value` overrides, applied in order after the file. */
  set?: readonly string[];
  /** Extra overrides as an object (library users), applied last. */
  overrides?: Plain;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const file = options.file ?? defaultConfigPath;
  let doc = readYamlFile(file);
  for (const assignment of options.set ?? []) {
    const over = parseOverride(assignment);
    resolvePaths(over, process.cwd());
    doc = deepMerge(doc, over);
  }
  if (options.overrides) doc = deepMerge(doc, options.overrides);
  return validateConfig(doc, path.resolve(file));
}
