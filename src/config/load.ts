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
import { configProblems } from './problems.js';
import { projectRoot } from '../util/project-root.js';

type Plain = Record<string, unknown>;

export { projectRoot };

export const defaultConfigPath: string = path.join(projectRoot, 'configs', 'default.yaml');

/** Keys holding file paths: relative paths resolve against the YAML file that sets them. */
const PATH_KEYS: ReadonlyArray<readonly string[]> = [
  ['model', 'weights'],
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

/** A key set on the command line, and how the user set it (`--set cache.window=12`, `--token`). */
export interface OverrideOrigin {
  key: readonly string[];
  origin: string;
}

/** One problem: the key it is about, and what is wrong. */
interface Problem {
  key: string;
  message: string;
}

function issueProblems(issue: z.core.$ZodIssue): Problem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ key: issue.path.length ? `${issue.path.join('.')}.${k}` : k, message: 'unknown key' }));
  }
  return [{ key: issue.path.length ? issue.path.join('.') : '(top level)', message: issue.message }];
}

/** The last command-line setting that covers `key` (sets it, or a section it is in, or a key inside it). */
function originOf(key: string, origins: readonly OverrideOrigin[]): string | undefined {
  const path = key.split('.');
  for (let i = origins.length - 1; i >= 0; i--) {
    const set = origins[i].key;
    const n = Math.min(set.length, path.length);
    if (set.slice(0, n).every((k, j) => k === path[j])) return origins[i].origin;
  }
  return undefined;
}

/**
 * ERR_CONFIG_INVALID listing every problem. A problem with a key set on the command line names that
 * setting (`--set cache.window=abc: cache.window: ...`); the file is named only when it is at fault.
 */
function invalid(what: string, source: string, problems: readonly Problem[], origins: readonly OverrideOrigin[]): SinkstreamError {
  const lines = problems.map((p) => ({ origin: originOf(p.key, origins), text: `${p.key}: ${p.message}` }));
  const header = lines.every((l) => l.origin !== undefined) ? `${what} from the command line` : `${source}: ${what}`;
  const body = lines.map((l) => (l.origin ? `${l.origin}: ${l.text}` : l.text));
  return new SinkstreamError('ERR_CONFIG_INVALID', `${header}:\n  ${body.join('\n  ')}`);
}

/**
 * Validates a plain object (already merged, paths resolved). Throws ERR_CONFIG_INVALID listing every
 * problem; `origins` tells which keys came from the command line, so that their problems name it.
 */
export function validateConfig(doc: unknown, source = 'configuration', origins: readonly OverrideOrigin[] = []): Config {
  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) throw invalid('invalid configuration', source, parsed.error.issues.flatMap(issueProblems), origins);
  const problems = configProblems(parsed.data);
  if (problems.length) throw invalid('impossible combination', source, problems.map((p) => ({ key: p.path, message: p.message })), origins);
  return parsed.data;
}

/**
 * `base` with each patch laid over it in order (sections merged key by key, values and arrays
 * replaced), validated as a whole: a stream's overrides, a retune, a render job's settings.
 */
export function patchConfig(base: Config, patches: readonly object[], source: string): Config {
  return validateConfig(
    patches.reduce<Plain>((doc, patch) => deepMerge(doc, patch as Plain), base as unknown as Plain),
    source,
  );
}

export interface LoadOptions {
  /** YAML file; default configs/default.yaml. */
  file?: string;
  /**
   * `key=value` overrides, applied in order after the file. A plain string is a `--set`; a command's
   * own option gives its name as `origin` (e.g. `--token`), so that an error names that option.
   */
  set?: ReadonlyArray<string | { assignment: string; origin: string }>;
  /** Extra overrides as an object (library users), applied last. */
  overrides?: Plain;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const file = options.file ?? defaultConfigPath;
  let doc = readYamlFile(file);
  const origins: OverrideOrigin[] = [];
  for (const item of options.set ?? []) {
    const { assignment, origin } = typeof item === 'string' ? { assignment: item, origin: `--set ${item}` } : item;
    const over = parseOverride(assignment);
    origins.push({ key: assignment.slice(0, assignment.indexOf('=')).trim().split('.'), origin });
    resolvePaths(over, process.cwd());
    doc = deepMerge(doc, over);
  }
  if (options.overrides) doc = deepMerge(doc, options.overrides);
  return validateConfig(doc, path.resolve(file), origins);
}
