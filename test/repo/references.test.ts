/**
 * Nothing in the repository points at a file that is not in it: every `*.md` file a text file names
 * exists in the repository, and every relative link of a markdown file resolves (to a file, and to
 * a heading when it carries an #anchor). Files are the repository's own (git ls-files: tracked, plus
 * new files not ignored), read from the working tree.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((f) => f && existsSync(path.join(root, f)) && statSync(path.join(root, f)).isFile());
const fileSet = new Set(files);
const basenames = new Set(files.map((f) => path.posix.basename(f)));

/** Text files worth reading: not binary (no NUL in the first 8 KB), not generated lock files, at most 2 MB. */
function readText(file: string): string | null {
  if (file === 'package-lock.json') return null;
  const full = path.join(root, file);
  if (statSync(full).size > 2 * 1024 * 1024) return null;
  const data = readFileSync(full);
  if (data.subarray(0, 8192).includes(0)) return null;
  return data.toString('utf8');
}
const texts = new Map(files.flatMap((f) => {
  const t = readText(f);
  return t === null ? [] : [[f, t] as const];
}));

/** GitHub's heading anchor: lower case, punctuation dropped (not - or _), spaces to hyphens. */
export function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const slug = headingSlug(m[1]);
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Whether `target` (a path as written in `from`) names a file or folder of the repository. */
function resolves(from: string, linked: string): boolean {
  const target = linked.replace(/(.)\/+$/, '$1'); // a folder link may end in '/'
  const candidates = [path.posix.normalize(path.posix.join(path.posix.dirname(from), target)), path.posix.normalize(target.replace(/^\.\//, ''))];
  return candidates.some((c) => !c.startsWith('..') && (fileSet.has(c) || files.some((f) => f.startsWith(`${c}/`))));
}

test('headingSlug follows GitHub', () => {
  assert.is(headingSlug('The loop (src/loop/generator.ts)'), 'the-loop-srcloopgeneratorts');
  assert.is(headingSlug('sink (StreamingLLM; Self-Forcing / LongLive frame sink)'), 'sink-streamingllm-self-forcing--longlive-frame-sink');
  assert.is(headingSlug('Configuration (`serve:`)'), 'configuration-serve');
});

test('every *.md file a text file names exists in the repository', () => {
  const missing: string[] = [];
  for (const [file, text] of texts) {
    text.split('\n').forEach((line, i) => {
      // URLs name other sites' files; what they name is not this repository's to keep.
      const withoutUrls = line.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, ' ');
      for (const m of withoutUrls.matchAll(/(?<![\w/.-])((?:\.{1,2}\/|[\w-]+\/)*[\w.-]*\w\.md)\b(?![\w/-])/g)) {
        const name = m[1];
        const ok = name.includes('/') ? resolves(file, name) : basenames.has(name);
        if (!ok) missing.push(`${file}:${i + 1}: ${name}`);
      }
    });
  }
  assert.equal(missing, [], `names of markdown files that are not in the repository:\n${missing.join('\n')}`);
});

test('every relative link in the markdown files resolves, anchors included', () => {
  const broken: string[] = [];
  for (const [file, text] of texts) {
    if (!file.endsWith('.md')) continue;
    let fenced = false;
    text.split('\n').forEach((line, i) => {
      if (/^\s*```/.test(line)) fenced = !fenced;
      if (fenced) return;
      const code = line.replace(/`[^`]*`/g, '');
      for (const m of code.matchAll(/\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
        const link = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // http:, https:, mailto:
        const [target, anchor] = link.split('#') as [string, string | undefined];
        const decoded = decodeURIComponent(target);
        const where = `${file}:${i + 1}: ${link}`;
        if (decoded && !resolves(file, decoded)) {
          broken.push(`${where} (no such file)`);
          continue;
        }
        if (anchor === undefined) continue;
        const targetFile = decoded ? path.posix.normalize(path.posix.join(path.posix.dirname(file), decoded)) : file;
        const targetText = texts.get(targetFile);
        if (targetFile.endsWith('.md') && targetText !== undefined && !anchorsOf(targetText).has(anchor.toLowerCase())) {
          broken.push(`${where} (no heading #${anchor})`);
        }
      }
    });
  }
  assert.equal(broken, [], `broken links:\n${broken.join('\n')}`);
});

test.run();
