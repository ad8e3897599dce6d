/**
 * The tree's import graph: scheduler/ imports nothing from src/, and no cycle runs between folders.
 * Nodes are the top-level folders (scheduler/, tools/, test/), each folder directly under src/, and
 * each file directly in src/ (errors.ts, index.ts). Imports are read with TypeScript's own pre-processor
 * (static imports, re-exports, `import type`, dynamic `import()`), relative specifiers only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(rel));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Relative import specifiers of a file, resolved to repository paths (without extension games: .js -> .ts). */
export function importsOf(file: string, text = fs.readFileSync(path.join(root, file), 'utf8')): string[] {
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith('.'))
    .map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)).replace(/\.js$/, '.ts'));
}

/** The folder a repository path belongs to in the graph. */
export function nodeOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] !== 'src') return parts[0];
  return parts.length === 2 ? file : `src/${parts[1]}`;
}

export function folderGraph(files: readonly string[], read: (file: string) => string[]): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of files) {
    const from = nodeOf(file);
    if (!graph.has(from)) graph.set(from, new Map());
    for (const target of read(file)) {
      const to = nodeOf(target);
      if (to !== from && !graph.get(from)!.has(to)) graph.get(from)!.set(to, `${file} -> ${target}`);
    }
  }
  return graph;
}

/** A cycle (each edge with one import that makes it), or null: depth-first search with colours. */
export function findCycle(graph: Map<string, Map<string, string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
      if (state.get(next) === 'open') {
        const loop = [...stack.slice(stack.indexOf(next)), next];
        return loop.slice(1).map((to, i) => graph.get(loop[i])!.get(to)!);
      }
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of [...graph.keys()].sort()) {
    if (!state.has(node)) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return null;
}

const schedulerFiles = tsFiles('scheduler');
const sourceFiles = [...tsFiles('src'), ...schedulerFiles];
const treeFiles = [...sourceFiles, ...tsFiles('tools'), ...tsFiles('test')];

test('scheduler/ imports nothing from src/', () => {
  const into = schedulerFiles.flatMap((f) => importsOf(f).filter((t) => t.startsWith('src/')).map((t) => `${f} -> ${t}`));
  assert.equal(into, []);
});

test('no import cycle between the folders of src/, scheduler/, tools/ and test/', () => {
  const cycle = findCycle(folderGraph(treeFiles, (f) => importsOf(f)));
  assert.is(cycle, null, `cycle:\n  ${cycle?.join('\n  ')}`);
});

test('the product (src/, scheduler/) imports nothing from tools/ or test/', () => {
  const into = sourceFiles.flatMap((f) => importsOf(f).filter((t) => /^(tools|test)\//.test(t)).map((t) => `${f} -> ${t}`));
  assert.equal(into, []);
});

test('the checks catch what they are for: an import into src/, a cycle, dynamic and type-only imports', () => {
  assert.equal(importsOf('scheduler/x.ts', "import type { A } from '../src/a.js';\nconst m = await import('./b.js');\nexport * from 'zod';"), ['src/a.ts', 'scheduler/b.ts']);
  const files: Record<string, string[]> = {
    'src/cache/a.ts': ['src/engine/b.ts'],
    'src/engine/b.ts': ['src/errors.ts'],
    'src/errors.ts': [],
    'scheduler/c.ts': [],
  };
  assert.is(findCycle(folderGraph(Object.keys(files), (f) => files[f])), null);
  files['src/errors.ts'] = ['src/cache/a.ts'];
  assert.equal(findCycle(folderGraph(Object.keys(files), (f) => files[f])), [
    'src/cache/a.ts -> src/engine/b.ts',
    'src/engine/b.ts -> src/errors.ts',
    'src/errors.ts -> src/cache/a.ts',
  ]);
});

test.run();
